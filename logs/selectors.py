"""Reads of log lines. Callers scope by owner first (agents.selectors.session_get/agent_get)."""

from __future__ import annotations

from django.db.models import QuerySet

from logs.models import LogLine


def session_lines(*, session, after: int = 0, limit: int = 500) -> QuerySet[LogLine]:
    """Lines with seq > ``after``, oldest first: a keyset page on the (session, seq) index,
    so the cost does not grow with how deep into the session it reads."""
    return LogLine.objects.filter(session=session, seq__gt=after).order_by("seq")[:limit]


def session_lines_between(*, session_id, after: int, upto: int, limit: int) -> QuerySet[LogLine]:
    """Lines with after < seq <= upto, oldest first (a WebSocket catching up)."""
    return LogLine.objects.filter(session_id=session_id, seq__gt=after, seq__lte=upto).order_by(
        "seq"
    )[:limit]


def agent_lines(*, agent, limit: int = 100, offset: int = 0) -> QuerySet[LogLine]:
    """The newest lines across the agent's sessions, newest first (insertion order)."""
    session_ids = list(agent.sessions.values_list("pk", flat=True))
    return LogLine.objects.filter(session_id__in=session_ids).order_by("-id")[
        offset : offset + limit
    ]
