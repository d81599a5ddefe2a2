"""Reads for the pages: an agent's display status, the list with its per-agent totals."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet, Subquery

from agents.models import LIVE_SESSION_STATUSES, Agent, Session
from agents.selectors import agents_for, sessions_for
from sandboxes.models import Sandbox, SandboxStatus
from sandboxes.selectors import costs_by_agent

# The badge a user sees for an agent, from its newest sandbox and whether a run is live.
IDLE, DEPLOYING, READY, RUNNING, FAILED = "idle", "deploying", "ready", "running", "failed"
PAUSED = "paused"


def display_status(sandbox_status: str | None, running: bool) -> str:
    if running:
        return RUNNING
    if sandbox_status in (SandboxStatus.PENDING, SandboxStatus.CREATING):
        return DEPLOYING
    if sandbox_status == SandboxStatus.READY:
        return READY
    if sandbox_status == SandboxStatus.PAUSED:
        return PAUSED
    if sandbox_status == SandboxStatus.FAILED:
        return FAILED
    return IDLE  # never deployed, stopping, stopped or expired


def agent_rows(*, user) -> QuerySet[Agent]:
    """The user's agents with `sandbox_status`, `running` and `last_session_at` annotated:
    one query, however many sessions each agent has (`with_status` adds the cost)."""
    newest_sandbox = Sandbox.objects.filter(agent=OuterRef("pk")).order_by("-created_at")
    newest_session = Session.objects.filter(agent=OuterRef("pk")).order_by("-created_at")
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
        )
    )


def with_status(agents) -> list[Agent]:
    """Attach `display_status` and `total_cost` (model + sandbox, the API's figure from
    sandboxes.selectors.costs_by_agent) to annotated agents (see agent_rows)."""
    agents = list(agents)
    costs = costs_by_agent(a.pk for a in agents)
    for agent in agents:
        agent.display_status = display_status(agent.sandbox_status, agent.running)
        agent.total_cost = costs[agent.pk].total_usd
    return agents


def resumable_session(*, user, agent) -> Session | None:
    """The newest session of the agent that has a conversation to continue."""
    return sessions_for(user=user, agent_id=agent.pk).exclude(claude_session_id="").first()
