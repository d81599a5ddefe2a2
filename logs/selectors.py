"""Reads of log lines. Callers scope by owner first (agents.selectors.session_get/agent_get)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from logs.models import LogLine
from logs.serializers import PAYLOAD_FIELDS, payload_from_row


def session_lines(*, session, after: int = 0, limit: int = 500) -> list[dict[str, Any]]:
    """Lines with seq > ``after``, oldest first, as ``line_payload`` dicts: a keyset page on
    the (session, seq) index, so the cost does not grow with how deep into the session it
    reads. Rows, not model instances: that halves the time a 500-line page takes."""
    rows = LogLine.objects.filter(session=session, seq__gt=after).order_by("seq")
    return [payload_from_row(*row) for row in rows.values_list(*PAYLOAD_FIELDS)[:limit]]


def session_lines_between(*, session_id, after: int, upto: int, limit: int) -> list[dict[str, Any]]:
    """Lines with after < seq <= upto, oldest first (a WebSocket catching up), as payloads."""
    rows = LogLine.objects.filter(session_id=session_id, seq__gt=after, seq__lte=upto)
    rows = rows.order_by("seq").values_list(*PAYLOAD_FIELDS)[:limit]
    return [payload_from_row(*row) for row in rows]


def agent_lines(*, agent, limit: int = 100, offset: int = 0) -> QuerySet[LogLine]:
    """The newest lines across the agent's sessions, newest first (insertion order)."""
    session_ids = list(agent.sessions.values_list("pk", flat=True))
    return LogLine.objects.filter(session_id__in=session_ids).order_by("-id")[
        offset : offset + limit
    ]
