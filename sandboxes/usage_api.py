"""GET /api/usage/: what the user's agents have cost."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.selectors import agents_for
from agents.serializers import CostSerializer
from sandboxes.selectors import Cost, costs_by_agent


class AgentCostSerializer(CostSerializer):
    agent = serializers.UUIDField()
    name = serializers.CharField()


class UsageSerializer(CostSerializer):
    agents = AgentCostSerializer(many=True)


class UsageView(APIView):
    @extend_schema(responses=UsageSerializer, operation_id="usage")
    def get(self, request):
        agents = list(agents_for(user=request.user).only("id", "name"))
        costs = costs_by_agent(a.pk for a in agents)
        total = Cost(
            model_usd=sum((c.model_usd for c in costs.values()), Cost().model_usd),
            sandbox_usd=sum((c.sandbox_usd for c in costs.values()), Cost().sandbox_usd),
            sessions=sum(c.sessions for c in costs.values()),
        )
        rows = [{"agent": a.pk, "name": a.name, **costs[a.pk].as_dict()} for a in agents]
        return Response({**total.as_dict(), "agents": rows})
