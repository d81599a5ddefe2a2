"""Input and output shapes of the logs API, and the one Session output shape.

Ingest batches are validated by ``parse_append`` (plain Python, not DRF fields): a batch of
1,000 lines through DRF's per-field machinery costs tens of milliseconds, which is most of an
append. The DRF serializers below describe the same shapes for the OpenAPI schema, and
``SessionOutputSerializer`` renders sessions for the API and for WebSocket events alike.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from rest_framework import serializers

from agent_runtime import protocol
from agents.models import Session
from logs import jsonio
from logs.models import LogKind, LogLine
from studio.errors import ValidationFailed

MAX_BATCH_LINES = protocol.MAX_BATCH_LINES
MAX_LINE_CHARS = 64 * 1024
TRUNCATION_MARKER = "… [truncated {n} chars]"
_KINDS = frozenset(LogKind.values)
_MAX_SEQ = 2**63 - 1


# ---- ingest ----------------------------------------------------------------------------


@dataclass
class LineIn:
    seq: int
    kind: str
    text: str
    data: Any
    ts: datetime


@dataclass
class AppendBatch:
    session_id: uuid.UUID
    lines: list[LineIn]
    status: dict[str, Any] = field(default_factory=dict)


def _fail(where: str, message: str):
    raise ValidationFailed(f"{where}: {message}", details={where: [message]})


def parse_session_id(body: Any) -> uuid.UUID:
    """The batch's session id; checked first because the bearer token is bound to it."""
    if not isinstance(body, dict):
        raise ValidationFailed("The body must be a JSON object.")
    try:
        return uuid.UUID(str(body.get("session_id")))
    except ValueError:
        _fail("session_id", "A valid session UUID is required.")


def parse_append(body: Any) -> AppendBatch:
    """Validate an ingest body into an ``AppendBatch``; ValidationFailed names the problem.

    Unknown fields are ignored (a newer runtime may send more). An over-long ``text`` is
    truncated with a marker rather than rejected, so one huge line never loses a batch.
    """
    session_id = parse_session_id(body)
    raw_lines = body.get("lines")
    if not isinstance(raw_lines, list):
        _fail("lines", "A list of lines is required.")
    if len(raw_lines) > MAX_BATCH_LINES:
        _fail("lines", f"At most {MAX_BATCH_LINES} lines per batch (got {len(raw_lines)}).")
    status = body.get("status")
    if status is not None and not isinstance(status, dict):
        _fail("status", "Must be an object.")
    lines, seen = [], set()
    for i, raw in enumerate(raw_lines):
        line = _parse_line(raw, f"lines[{i}]")
        if line.seq in seen:
            _fail(f"lines[{i}].seq", f"seq {line.seq} appears twice in the batch.")
        seen.add(line.seq)
        lines.append(line)
    lines.sort(key=lambda line: line.seq)
    return AppendBatch(session_id=session_id, lines=lines, status=status or {})


def _parse_line(raw: Any, where: str) -> LineIn:
    if not isinstance(raw, dict):
        _fail(where, "Each line must be an object.")
    seq = raw.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 < seq <= _MAX_SEQ:
        _fail(f"{where}.seq", "Must be a positive integer.")
    kind = raw.get("kind")
    if kind not in _KINDS:
        _fail(f"{where}.kind", f"Must be one of {', '.join(sorted(_KINDS))}.")
    text = raw.get("text")
    if text is None:
        text = ""
    elif not isinstance(text, str):
        _fail(f"{where}.text", "Must be a string.")
    ts = raw.get("ts")
    try:
        parsed = datetime.fromisoformat(ts)
    except (TypeError, ValueError):
        _fail(f"{where}.ts", "Must be an ISO-8601 timestamp.")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return LineIn(seq=seq, kind=kind, text=text, data=raw.get("data"), ts=parsed)


def truncate(text: str) -> str:
    """``text`` cut to MAX_LINE_CHARS, with a marker saying how much was dropped."""
    if len(text) <= MAX_LINE_CHARS:
        return text
    return text[:MAX_LINE_CHARS] + TRUNCATION_MARKER.format(n=len(text) - MAX_LINE_CHARS)


class LineInputSerializer(serializers.Serializer):
    seq = serializers.IntegerField(min_value=1)
    kind = serializers.ChoiceField(choices=LogKind.choices)
    text = serializers.CharField(
        allow_blank=True, help_text=f"Longer than {MAX_LINE_CHARS} characters: truncated."
    )
    data = serializers.JSONField(required=False, allow_null=True)
    ts = serializers.DateTimeField()


class AppendInputSerializer(serializers.Serializer):
    """Documents the ingest body; ``parse_append`` enforces it."""

    session_id = serializers.UUIDField()
    lines = LineInputSerializer(many=True, max_length=MAX_BATCH_LINES)
    status = serializers.DictField(required=False, allow_null=True)


class AppendOutputSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="Lines stored by this request.")
    duplicates = serializers.IntegerField(help_text="Lines already stored (a retried batch).")
    last_seq = serializers.IntegerField(help_text="The highest seq stored for the session.")


# ---- output ----------------------------------------------------------------------------


PAYLOAD_FIELDS = ("seq", "kind", "text", "data", "ts")


def line_payload(line: LogLine | LineIn) -> dict[str, Any]:
    """A line as the API and WebSockets send it (plain types, cheap for 5,000 rows)."""
    return payload_from_row(line.seq, line.kind, line.text, line.data, line.ts)


def payload_from_row(seq: int, kind: str, text: str, data: Any, ts: datetime) -> dict[str, Any]:
    """``line_payload`` of a row read as ``values_list(*PAYLOAD_FIELDS)``."""
    return {
        "seq": seq,
        "kind": kind,
        "text": text,
        "data": data,
        "ts": ts.isoformat().replace("+00:00", "Z"),
    }


def lines_frame(lines: list[LineIn | LogLine]) -> str:
    """The WebSocket frame ``{"type": "lines", "lines": [line_payload(line), ...]}``.

    orjson writes a LineIn as it is (a dataclass whose fields are PAYLOAD_FIELDS, in order;
    a UTC time as "Z"), with no dict made per line; anything else goes through line_payload.
    """
    if all(type(line) is LineIn for line in lines):
        try:
            return orjson.dumps({"type": "lines", "lines": lines}, option=orjson.OPT_UTC_Z).decode()
        except TypeError:  # data orjson cannot write: an integer beyond 64 bits
            pass
    return jsonio.dumps({"type": "lines", "lines": [line_payload(line) for line in lines]})


class LineOutputSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=LogKind.choices)
    text = serializers.CharField()
    data = serializers.JSONField(allow_null=True)
    ts = serializers.DateTimeField()


class AgentLineOutputSerializer(LineOutputSerializer):
    session_id = serializers.UUIDField()


class SessionOutputSerializer(serializers.ModelSerializer):
    agent = serializers.UUIDField(source="agent_id", read_only=True)
    sandbox = serializers.UUIDField(source="sandbox_id", read_only=True, allow_null=True)
    resumed_from = serializers.UUIDField(source="resumed_from_id", read_only=True, allow_null=True)
    total_cost_usd = serializers.FloatField(read_only=True)
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    last_seq = serializers.IntegerField(
        read_only=True, help_text="The highest seq stored (lines may still be missing below it)."
    )

    class Meta:
        model = Session
        fields = [
            "id",
            "agent",
            "sandbox",
            "resumed_from",
            "prompt",
            "status",
            "created_at",
            "started_at",
            "finished_at",
            "duration_seconds",
            "num_turns",
            "total_cost_usd",
            "usage",
            "claude_session_id",
            "error",
            "last_seq",
        ]
        read_only_fields = fields


class SessionLogsOutputSerializer(serializers.Serializer):
    lines = LineOutputSerializer(many=True)
    next_after = serializers.IntegerField(
        help_text="Pass as `after` for the next page: the last seq returned, or `after`."
    )
    session = SessionOutputSerializer()


class AgentLogsOutputSerializer(serializers.Serializer):
    lines = AgentLineOutputSerializer(many=True, help_text="Newest first.")
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    next_offset = serializers.IntegerField(allow_null=True)
