"""Agents REST API: thin views over agents.services and agents.selectors."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.response import Response

from agents import selectors
from agents.serializers import AgentInputSerializer, AgentOutputSerializer
from agents.services.agents import agent_create, agent_delete, agent_update
from gateway.selectors import agent_budgets
from sandboxes.selectors import costs_by_agent
from studio.api import Pagination


class AgentViewSet(viewsets.ViewSet):
    lookup_value_regex = "[0-9a-fA-F-]{36}"
    # Declared so the schema shows the list's page envelope, not a bare array.
    pagination_class = Pagination

    @extend_schema(responses=AgentOutputSerializer(many=True))
    def list(self, request):
        qs = selectors.agents_for(user=request.user)
        paginator = self.paginator
        page = paginator.paginate_queryset(qs, request, view=self)
        costs = costs_by_agent(a.pk for a in page)
        budgets = agent_budgets(a.pk for a in page)
        context = {"costs": costs, "budgets": budgets}
        data = AgentOutputSerializer(page, many=True, context=context).data
        return paginator.get_paginated_response(data)

    @extend_schema(request=AgentInputSerializer, responses={201: AgentOutputSerializer})
    def create(self, request):
        data = _validated(request.data)
        agent = agent_create(owner=request.user, data=data)
        return Response(_render(agent), status=status.HTTP_201_CREATED)

    @extend_schema(responses=AgentOutputSerializer)
    def retrieve(self, request, pk=None):
        return Response(_render(selectors.agent_get(user=request.user, agent_id=pk)))

    @extend_schema(request=AgentInputSerializer, responses=AgentOutputSerializer)
    def update(self, request, pk=None):
        agent = selectors.agent_get(user=request.user, agent_id=pk)
        agent = agent_update(agent=agent, data=_validated(request.data))
        return Response(_render(agent))

    @extend_schema(request=AgentInputSerializer, responses=AgentOutputSerializer)
    def partial_update(self, request, pk=None):
        agent = selectors.agent_get(user=request.user, agent_id=pk)
        agent = agent_update(agent=agent, data=_validated(request.data, partial=True))
        return Response(_render(agent))

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        agent_delete(agent=selectors.agent_get(user=request.user, agent_id=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @property
    def paginator(self):
        if not hasattr(self, "_paginator"):
            self._paginator = self.pagination_class()
        return self._paginator


def _validated(data, *, partial: bool = False) -> dict:
    serializer = AgentInputSerializer(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _render(agent) -> dict:
    # Reload so nested skills and secret names reflect what was just written.
    agent = type(agent).objects.prefetch_related("skills", "secrets").get(pk=agent.pk)
    return AgentOutputSerializer(agent).data
