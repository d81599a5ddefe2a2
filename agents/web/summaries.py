"""Reads for the pages: an agent's display status, the list with its per-agent totals."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import DecimalField, Exists, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from agents.models import LIVE_SESSION_STATUSES, Agent, Session
from agents.selectors import agents_for, sessions_for
from sandboxes.models import Sandbox, SandboxStatus

# The badge a user sees for an agent, from its newest sandbox and whether a run is live.
IDLE, DEPLOYING, READY, RUNNING, FAILED = "idle", "deploying", "ready", "running", "failed"


def display_status(sandbox_status: str | None, running: bool) -> str:
    if running:
        return RUNNING
    if sandbox_status in (SandboxStatus.PENDING, SandboxStatus.CREATING):
        return DEPLOYING
    if sandbox_status == SandboxStatus.READY:
        return READY
    if sandbox_status == SandboxStatus.FAILED:
        return FAILED
    return IDLE  # never deployed, stopping, stopped or expired


def agent_rows(*, user) -> QuerySet[Agent]:
    """The user's agents with `sandbox_status`, `running`, `last_session_at` and
    `total_cost` annotated: one query, however many sessions each agent has."""
    newest_sandbox = Sandbox.objects.filter(agent=OuterRef("pk")).order_by("-created_at")
    newest_session = Session.objects.filter(agent=OuterRef("pk")).order_by("-created_at")
    cost = (
        Session.objects.filter(agent=OuterRef("pk"))
        .order_by()
        .values("agent")
        .annotate(total=Sum("total_cost_usd"))
        .values("total")
    )
    money = DecimalField(max_digits=14, decimal_places=6)
    return (
        agents_for(user=user)
        .prefetch_related(None)
        .annotate(
            sandbox_status=Subquery(newest_sandbox.values("status")[:1]),
            running=Exists(
                Session.objects.filter(agent=OuterRef("pk"), status__in=LIVE_SESSION_STATUSES)
            ),
            last_session_at=Subquery(newest_session.values("created_at")[:1]),
            last_session_id=Subquery(newest_session.values("id")[:1]),
            total_cost=Coalesce(
                Subquery(cost, output_field=money), Value(Decimal(0)), output_field=money
            ),
        )
    )


def with_status(agents) -> list[Agent]:
    """Attach `display_status` to annotated agents (see agent_rows)."""
    agents = list(agents)
    for agent in agents:
        agent.display_status = display_status(agent.sandbox_status, agent.running)
    return agents


def resumable_session(*, user, agent) -> Session | None:
    """The newest session of the agent that has a conversation to continue."""
    return sessions_for(user=user, agent_id=agent.pk).exclude(claude_session_id="").first()
