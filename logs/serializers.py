"""Input and output shapes of the logs API, and the one Session output shape.

Ingest batches are validated by ``parse_append`` (plain Python, not DRF fields): a batch of
1,000 lines through DRF's per-field machinery costs tens of milliseconds, which is most of an
append. The DRF serializers below describe the same shapes for the OpenAPI schema, and
``SessionOutputSerializer`` renders sessions for the API and for WebSocket events alike.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from rest_framework import serializers
from rest_framework.exceptions import ParseError

from agent_runtime import protocol
from agents.models import Session, SessionStatus
from logs import jsonio
from logs.models import LogKind, LogLine
from studio.errors import ValidationFailed

MAX_BATCH_LINES = protocol.MAX_BATCH_LINES
MAX_LINE_CHARS = 64 * 1024
TRUNCATION_MARKER = "… [truncated {n} chars]"
_KINDS = frozenset(LogKind.values)
_MAX_SEQ = 2**63 - 1
# The session id as a sandbox writes it (the runtime's shipper puts it first in the body):
# found in the raw bytes, so the token is checked before anything parses the body.
_RAW_SESSION_ID = re.compile(rb'"session_id"\s*:\s*"([0-9A-Fa-f-]{32,36})"')
MAX_SESSION_ID_CANDIDATES = 16


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


def session_id_candidates(body: bytes) -> Iterator[uuid.UUID]:
    """The session ids a raw ingest body may be for, in order: each ``"session_id": "<uuid>"``
    in it (a line's data may hold one too), at most MAX_SESSION_ID_CANDIDATES, found
    lazily (the runtime writes the body's own first). Read from the bytes without parsing
    them, so the bearer token can be checked first; ``parse_append`` later insists that the
    body's own ``session_id`` is the one the token matched."""
    found: set[uuid.UUID] = set()
    for match in _RAW_SESSION_ID.finditer(body):
        try:
            candidate = uuid.UUID(match.group(1).decode())
        except ValueError:
            continue
        if candidate not in found:
            found.add(candidate)
            yield candidate
            if len(found) == MAX_SESSION_ID_CANDIDATES:
                return


def parse_session_id(body: Any) -> uuid.UUID:
    """The batch's session id (the view then insists it is the one the token matched)."""
    if not isinstance(body, dict):
        raise ValidationFailed("The body must be a JSON object.")
    try:
        return uuid.UUID(str(body.get("session_id")))
    except ValueError:
        _fail("session_id", "A valid session UUID is required.")


def read_append(raw: bytes) -> AppendBatch:
    """Parse (``jsonio.loads``: nesting bounded first) and validate a raw ingest body. A
    non-finite number is a 400; when it sits in a run report, the message names the field."""
    try:
        body = jsonio.loads(raw)
    except jsonio.NotFinite as exc:
        parse_append(jsonio.loads_allowing_non_finite(raw))  # names a report field holding it
        raise ParseError(f"JSON parse error - {exc}") from None
    except ValueError as exc:
        raise ParseError(f"JSON parse error - {exc}") from None
    return parse_append(body)


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
    if status is not None:
        parse_report(status, "status", strict=True)
    lines, seen = [], set()
    for i, raw in enumerate(raw_lines):
        line = _parse_line(raw, f"lines[{i}]")
        if line.kind in REPORT_KINDS and isinstance(line.data, dict):
            parse_report(line.data, f"lines[{i}].data", strict=False)
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


# ---- what a sandbox reports about its run -----------------------------------------------

# Lines whose data the ingest reads as a report (status, and a result's figures).
REPORT_KINDS = frozenset({LogKind.STATUS, LogKind.RESULT})
MAX_TURNS = 10**6
MAX_REPORTED_USD = 100_000
MAX_REPORTED_COUNT = 10**10  # tokens or milliseconds in one run
MAX_REPORT_DEPTH = 3
MAX_REPORT_ENTRIES = 64
MAX_SHORT_STRING = 200
_CLAUDE_SESSION_ID = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE
)
_STATUSES = frozenset(SessionStatus.values)


def _number(value: Any, where: str, *, limit: float, integer: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(where, "Must be a number.")
    if integer and not isinstance(value, int):
        _fail(where, "Must be an integer.")
    if not math.isfinite(value) or not 0 <= value <= limit:
        _fail(where, f"Must be a finite number from 0 to {limit:g}.")


def _short_string(value: Any, where: str) -> None:
    if value is not None and (not isinstance(value, str) or len(value) > MAX_SHORT_STRING):
        _fail(where, f"Must be a string of at most {MAX_SHORT_STRING} characters.")


def _string(value: Any, where: str) -> None:
    if value is not None and not isinstance(value, str):
        _fail(where, "Must be a string.")


def _figures(value: Any, where: str, depth: int = 1) -> None:
    """Usage-like figures: objects and lists (bounded), short strings, booleans, and
    finite, non-negative, bounded numbers."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        _short_string(value, where)
        return
    if isinstance(value, int | float):
        _number(value, where, limit=MAX_REPORTED_COUNT)
        return
    if not isinstance(value, dict | list):
        _fail(where, "Must be a number, string, boolean, object or list.")
    if depth > MAX_REPORT_DEPTH or len(value) > MAX_REPORT_ENTRIES:
        _fail(where, f"At most {MAX_REPORT_DEPTH} levels of {MAX_REPORT_ENTRIES} entries.")
    if isinstance(value, dict):
        for key, item in value.items():
            _short_string(key, f"{where}.<key>")
            _figures(item, f"{where}.{key}", depth + 1)
    else:
        for i, item in enumerate(value):
            _figures(item, f"{where}[{i}]", depth + 1)


def _usage(value: Any, where: str) -> None:
    if value is not None and not isinstance(value, dict):
        _fail(where, "Must be an object.")
    _figures(value, where)


def _status(value: Any, where: str) -> None:
    if value is not None and value not in _STATUSES:
        _fail(where, f"Must be one of {', '.join(sorted(_STATUSES))}.")


def _claude_session_id(value: Any, where: str) -> None:
    if value is not None and not (isinstance(value, str) and _CLAUDE_SESSION_ID.match(value)):
        _fail(where, "Must be a Claude session id (a UUID).")


def _flag(value: Any, where: str) -> None:
    if value is not None and not isinstance(value, bool):
        _fail(where, "Must be true or false.")


# Each field a run report may carry, and its check: the runtime's status objects and result
# records (agent_runtime/runner.py build_result) have exactly these.
REPORT_FIELDS = {
    "status": _status,
    "claude_session_id": _claude_session_id,
    "num_turns": lambda v, w: _number(v, w, limit=MAX_TURNS, integer=True),
    "total_cost_usd": lambda v, w: _number(v, w, limit=MAX_REPORTED_USD),
    "usage": _usage,
    "duration_ms": lambda v, w: _number(v, w, limit=MAX_REPORTED_COUNT, integer=True),
    "is_error": _flag,
    "subtype": _short_string,
    "result": _string,
    "error": _string,
    "started_at": _short_string,
    "finished_at": _short_string,
    "resume": _short_string,
}


def parse_report(report: Any, where: str, *, strict: bool) -> None:
    """Check what a sandbox reports about its run (the batch's ``status`` object, or the data
    of a status or result line): known fields, types, ranges. ValidationFailed names the
    field. ``strict`` (the status object) refuses unknown fields too; a line's data is the
    SDK's message and may hold more."""
    if not isinstance(report, dict):
        _fail(where, "Must be an object.")
    for key, value in report.items():
        check = REPORT_FIELDS.get(key)
        if check is not None:
            check(value, f"{where}.{key}")
        elif strict:
            _fail(f"{where}.{key}", f"Unknown field; known: {', '.join(sorted(REPORT_FIELDS))}.")


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


class StatusInputSerializer(serializers.Serializer):
    """Documents a run report; ``parse_report`` enforces it. The reported cost and usage are
    kept on the result line only: the studio meters a run's cost itself."""

    status = serializers.ChoiceField(choices=SessionStatus.choices, required=False)
    claude_session_id = serializers.UUIDField(required=False, allow_null=True)
    num_turns = serializers.IntegerField(
        min_value=0, max_value=MAX_TURNS, required=False, allow_null=True
    )
    total_cost_usd = serializers.FloatField(
        min_value=0, max_value=MAX_REPORTED_USD, required=False, allow_null=True
    )
    usage = serializers.DictField(required=False, allow_null=True)
    duration_ms = serializers.IntegerField(
        min_value=0, max_value=MAX_REPORTED_COUNT, required=False, allow_null=True
    )
    is_error = serializers.BooleanField(required=False, allow_null=True)
    subtype = serializers.CharField(required=False, allow_null=True)
    result = serializers.CharField(required=False, allow_null=True)
    error = serializers.CharField(required=False, allow_null=True)
    started_at = serializers.CharField(required=False, allow_null=True)
    finished_at = serializers.CharField(required=False, allow_null=True)
    resume = serializers.CharField(required=False, allow_null=True)


class AppendInputSerializer(serializers.Serializer):
    """Documents the ingest body; ``parse_append`` enforces it."""

    session_id = serializers.UUIDField()
    lines = LineInputSerializer(many=True, max_length=MAX_BATCH_LINES)
    status = StatusInputSerializer(required=False, allow_null=True)


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
