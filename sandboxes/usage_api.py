"""GET /api/usage/: what the user's agents have cost, and what is left of each limit."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.selectors import agents_for
from agents.serializers import CostSerializer
from gateway.selectors import agent_budgets, user_budget
from sandboxes.selectors import Cost, costs_by_agent


class BudgetSerializer(serializers.Serializer):
    """Limits (null: none), spent in each limit's period, and what remains (null: no limit)."""

    limits = serializers.DictField(child=serializers.CharField(allow_null=True))
    spent = serializers.DictField(child=serializers.CharField())
    remaining = serializers.DictField(child=serializers.CharField(allow_null=True))


class AgentCostSerializer(CostSerializer):
    agent = serializers.UUIDField()
    name = serializers.CharField()
    budget = BudgetSerializer(
        help_text="The agent's usd_per_run (spent: its latest run), usd_per_day, usd_per_month."
    )


class UsageSerializer(CostSerializer):
    limits = serializers.DictField(
        child=serializers.CharField(allow_null=True),
        help_text="Your own usd_per_day and usd_per_month (GET/PUT /api/usage/limits).",
    )
    spent = serializers.DictField(
        child=serializers.CharField(), help_text="Model cost today and this month."
    )
    remaining = serializers.DictField(child=serializers.CharField(allow_null=True))
    agents = AgentCostSerializer(many=True)


class UsageView(APIView):
    @extend_schema(responses=UsageSerializer, operation_id="usage")
    def get(self, request):
        agents = list(agents_for(user=request.user).only("id", "name"))
        costs = costs_by_agent(a.pk for a in agents)
        budgets = agent_budgets(a.pk for a in agents)
        total = Cost(
            model_usd=sum((c.model_usd for c in costs.values()), Cost().model_usd),
            sandbox_usd=sum((c.sandbox_usd for c in costs.values()), Cost().sandbox_usd),
            sessions=sum(c.sessions for c in costs.values()),
        )
        rows = [
            {"agent": a.pk, "name": a.name, **costs[a.pk].as_dict(), "budget": budgets[a.pk]}
            for a in agents
        ]
        return Response({**total.as_dict(), **user_budget(user_id=request.user.pk), "agents": rows})
