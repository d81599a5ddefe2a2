"""Reads of agents and sessions, always scoped to their owner."""

from __future__ import annotations

from django.db.models import QuerySet

from agents.models import Agent, Session
from studio.errors import NotFound


def agents_for(*, user) -> QuerySet[Agent]:
    return Agent.objects.filter(owner=user).prefetch_related("skills", "secrets")


def agent_get(*, user, agent_id) -> Agent:
    """The user's agent, or NotFound: another user's agent does not exist for them."""
    try:
        return agents_for(user=user).get(pk=agent_id)
    except (Agent.DoesNotExist, ValueError, TypeError):
        raise NotFound("Agent not found.") from None


def sessions_for(*, user, agent_id=None) -> QuerySet[Session]:
    qs = Session.objects.filter(agent__owner=user).select_related("agent", "sandbox")
    if agent_id is not None:
        qs = qs.filter(agent_id=agent_id)
    return qs


def session_get(*, user, session_id) -> Session:
    try:
        return sessions_for(user=user).get(pk=session_id)
    except (Session.DoesNotExist, ValueError, TypeError):
        raise NotFound("Session not found.") from None
