"""Reads about sandboxes: costs per agent and per user."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Sum

from agents.models import Session
from sandboxes.models import Sandbox

CENT = Decimal("0.000001")


@dataclass(frozen=True)
class Cost:
    model_usd: Decimal = Decimal(0)
    sandbox_usd: Decimal = Decimal(0)
    sessions: int = 0

    @property
    def total_usd(self) -> Decimal:
        return (self.model_usd + self.sandbox_usd).quantize(CENT)

    def as_dict(self) -> dict:
        return {
            "model_usd": str(self.model_usd.quantize(CENT)),
            "sandbox_usd": str(self.sandbox_usd.quantize(CENT)),
            "total_usd": str(self.total_usd),
            "sessions": self.sessions,
        }


def latest_sandbox(agent) -> Sandbox | None:
    """The agent's most recent sandbox, live or not (what its pages and 404s speak of)."""
    return agent.sandboxes.order_by("-created_at").first()


def costs_by_agent(agent_ids) -> dict:
    """{agent_id: Cost}: model cost from each session's result plus each sandbox's cost
    (sandboxes.pricing). Two queries whatever the number of agents. The API and the agents
    page both show these figures."""
    agent_ids = list(agent_ids)
    model = {
        row["agent_id"]: row
        for row in Session.objects.filter(agent_id__in=agent_ids)
        .values("agent_id")
        .annotate(usd=Sum("total_cost_usd"), n=Count("id"))
    }
    sandbox: dict = {}
    for box in Sandbox.objects.filter(agent_id__in=agent_ids).only(
        "agent_id", "created_at", "stopped_at", "cost_per_second", "paused_seconds", "paused_at"
    ):
        sandbox[box.agent_id] = sandbox.get(box.agent_id, Decimal(0)) + box.cost_usd
    return {
        agent_id: Cost(
            model_usd=Decimal(model.get(agent_id, {}).get("usd") or 0),
            sandbox_usd=sandbox.get(agent_id, Decimal(0)),
            sessions=model.get(agent_id, {}).get("n", 0),
        )
        for agent_id in agent_ids
    }
