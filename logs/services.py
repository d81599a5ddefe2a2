"""Writes of log lines: the ingest (sandbox → studio) and what it does to the session."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from math import inf
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from agents.models import FINAL_SESSION_STATUSES, Session, SessionStatus
from logs import jsonio
from logs.events import publish_lines, publish_session
from logs.models import LogKind, LogLine
from logs.redaction import Redactor, session_redactor
from logs.serializers import (
    MAX_LINE_CHARS,
    AppendBatch,
    LineIn,
    session_id_candidates,
    truncate,
)
from sandboxes.models import LIVE_SANDBOX_STATUSES, Sandbox
from sandboxes.services.activity import sandbox_touch
from studio import tokens
from studio.errors import Conflict, Forbidden, NotAuthenticated, NotFound, ValidationFailed


@dataclass(frozen=True)
class AppendResult:
    accepted: int
    duplicates: int
    last_seq: int


# Expiry is minutes away; a sandbox's activity clock needs no finer grain than this.
ACTIVITY_RESOLUTION = timedelta(seconds=2)
ACTIVITY_RESOLUTION_SECONDS = ACTIVITY_RESOLUTION.total_seconds()
_sandbox_looked_at: dict = {}  # sandbox id -> time.monotonic() of the last look
_TOKEN_SHAPE = re.compile(r"^[0-9a-f]{64}$")
# How long a session's ingest token keeps working after the session became final: the
# runtime's own closing lines (after a cancel, the run's last output and its result) take a
# few seconds to drain. Counted on the studio's clock (finished_at is never in the future).
INGEST_GRACE = timedelta(seconds=60)
# Sessions only move forward; every final status ranks the same, so a final one is final.
STATUS_RANK = {
    SessionStatus.QUEUED: 0,
    SessionStatus.STARTING: 1,
    SessionStatus.RUNNING: 2,
    **{status: 3 for status in FINAL_SESSION_STATUSES},
}


def ingest_bearer_token(authorization: str) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; NotAuthenticated (401) when
    it is missing or not shaped like a session token."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not _TOKEN_SHAPE.match(token):
        raise NotAuthenticated("A session bearer token is required.")
    return token


def ingest_authenticate(*, authorization: str, body: bytes) -> uuid.UUID:
    """The session id an ingest request may write to, from its bearer token and its raw
    body, before the body is parsed: NotAuthenticated (401) without a session-token-shaped
    bearer, ValidationFailed (400) when the body names no session id, Forbidden (403) when
    the token is not that session's.

    Checked before the session is looked up, so a caller without the right token learns
    nothing about whether the session exists: only the token holder can get a 404.
    """
    token = ingest_bearer_token(authorization)
    named = False
    for session_id in session_id_candidates(body):
        if tokens.session_token_matches(session_id, token):
            return session_id
        named = True
    if not named:
        raise ValidationFailed(
            "session_id: A valid session UUID is required.",
            details={"session_id": ["A valid session UUID is required."]},
        )
    raise Forbidden("This token does not grant access to that session.")


def ingest_authorize(*, session_id, token: str) -> None:
    """Forbidden (403) unless ``token`` is this session's token."""
    if not tokens.session_token_matches(session_id, token):
        raise Forbidden("This token does not grant access to that session.")


def _check_open(session: Session) -> None:
    """Conflict (409) once a session's token has ended: its sandbox is gone (stopped, failed,
    expired), or the session has been final for longer than INGEST_GRACE."""
    sandbox = session.sandbox
    if sandbox is not None and sandbox.status not in LIVE_SANDBOX_STATUSES:
        raise Conflict(
            f"The session's sandbox is {sandbox.status}: its ingest token has ended.",
            code="SandboxStopped",
        )
    if session.is_final and (
        session.finished_at is None or timezone.now() - session.finished_at > INGEST_GRACE
    ):
        raise Conflict(
            f"The session is {session.status}: its ingest token ended "
            f"{int(INGEST_GRACE.total_seconds())} s after it finished.",
            code="SessionFinished",
        )


def lines_append(*, batch: AppendBatch) -> AppendResult:
    """Store a batch of lines for one session, idempotent on (session, seq).

    Conflict (409) when the session's token has ended (``_check_open``). Lines are redacted
    and truncated before storage. Status and result lines (and the batch's ``status``
    object, validated by ``parse_append``) move the session forward: its status, turns and
    Claude session id, never its cost or usage (the studio meters those; the reported
    figures stay on the result line). A final session accepts no change at all (late lines
    within the grace are still stored); a report that would lower num_turns is a 400 and
    nothing is stored. The sandbox's activity clock is bumped. Lines and any status change
    are published once, after commit.
    """
    try:
        return _append(batch)
    except IntegrityError:
        # A writer stored one of these seqs without the session's row lock, after the
        # duplicate check: run again, and the check sees its row.
        return _append(batch)


@transaction.atomic
def _append(batch: AppendBatch) -> AppendResult:
    try:
        # Appends for one session serialise on its row lock, so the duplicate check below is
        # exact and concurrent status/last_seq updates cannot interleave.
        # The sandbox comes along in the same query (not locked) for _check_open.
        sessions = Session.objects.select_for_update(of=("self",)).select_related("sandbox")
        session = sessions.get(pk=batch.session_id)
    except Session.DoesNotExist:
        raise NotFound("Session not found.") from None
    _check_open(session)

    existing = _stored_seqs(session, [line.seq for line in batch.lines])
    redactor = session_redactor(session)
    new, documents = _cleaned([line for line in batch.lines if line.seq not in existing], redactor)
    _insert(session, new, documents)

    old_status = session.status
    fields = _apply_lines(session, new)
    if batch.status:
        ts = batch.lines[-1].ts if batch.lines else timezone.now()
        fields |= _apply_info(session, redactor.data(batch.status), ts)
    if new and new[-1].seq > session.last_seq:
        session.last_seq = new[-1].seq  # the highest seq stored; holes may remain below it
        fields.add("last_seq")
    if fields == {"last_seq"}:
        _save_last_seq(session)  # most appends: one column, without the ORM's save machinery
    elif fields:
        session.save(update_fields=sorted(fields))
    _touch_sandbox(session)

    publish_lines(session.pk, new)
    if session.status != old_status or fields - {"last_seq"}:
        publish_session(session)
    return AppendResult(
        accepted=len(new), duplicates=len(batch.lines) - len(new), last_seq=session.last_seq
    )


def _cleaned(lines: list[LineIn], redactor: Redactor) -> tuple[list[LineIn], list[str | None]]:
    """Redacted, truncated copies of ``lines`` (the batch itself stays as it was sent), and
    each one's data as JSON."""
    documents = _documents(lines)
    texts = [line.text for line in lines]
    dirty = redactor.could_change(texts, [doc for doc in documents if doc is not None])
    if not dirty and all(len(text) <= MAX_LINE_CHARS for text in texts):
        return lines, documents  # the usual batch: nothing to change
    cleaned = [
        LineIn(
            seq=line.seq,
            kind=line.kind,
            text=truncate(redactor.text(line.text) if dirty else line.text),
            data=redactor.data(line.data) if dirty else line.data,
            ts=line.ts,
        )
        for line in lines
    ]
    return cleaned, _documents(cleaned)


def _documents(lines: list[LineIn]) -> list[str | None]:
    return [None if line.data is None else jsonio.dumps(line.data) for line in lines]


def _insert(session: Session, lines: list[LineIn], documents: list[str | None]) -> None:
    if not lines:
        return
    if connection.vendor == "postgresql":
        _copy(session, lines, documents, timezone.now())
        return
    rows = [
        LogLine(session=session, seq=x.seq, kind=x.kind, text=x.text, data=x.data, ts=x.ts)
        for x in lines
    ]
    LogLine.objects.bulk_create(rows, ignore_conflicts=True)


def _copy(session: Session, lines: list[LineIn], documents: list[str | None], now) -> None:
    """COPY the rows: several times cheaper than a bulk INSERT, and exact here because every
    writer of a session's lines holds its row lock, which makes the duplicate check
    authoritative. (Were one not to, the conflict rolls the append back and
    ``lines_append`` runs it again.)"""
    columns = "session_id, seq, kind, text, data, ts, created_at"
    sql = f"COPY {LogLine._meta.db_table} ({columns}) FROM STDIN"
    # The raw psycopg cursor: wrap_database_errors turns its errors into Django's.
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.cursor.copy(sql) as copy,
    ):
        # The same session id and creation time on every row: written once as text, which
        # COPY parses, instead of dumping a UUID and a datetime per row.
        session_id, created_at = str(session.pk), now.isoformat()
        for x, data in zip(lines, documents, strict=True):
            copy.write_row((session_id, x.seq, x.kind, x.text, data, x.ts, created_at))


def _save_last_seq(session: Session) -> None:
    table, pk = Session._meta.db_table, Session._meta.pk
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET last_seq = %s WHERE {pk.column} = %s",  # noqa: S608 - model table
            [session.last_seq, pk.get_db_prep_value(session.pk, connection)],
        )


def _stored_seqs(session: Session, seqs: list[int]) -> set[int]:
    # last_seq is the highest seq stored, and every writer keeps it so under the row lock:
    # a batch past it (the normal case) needs no lookup.
    if not seqs or seqs[0] > session.last_seq:
        return set()
    qs = LogLine.objects.filter(session=session)
    # A batch is normally a contiguous run: a range scan is cheaper than a long IN list.
    if seqs[-1] - seqs[0] < 4 * len(seqs):
        qs = qs.filter(seq__gte=seqs[0], seq__lte=seqs[-1])
    else:
        qs = qs.filter(seq__in=seqs)
    return set(qs.values_list("seq", flat=True)) & set(seqs)


def _apply_lines(session: Session, lines: list[LineIn]) -> set[str]:
    fields: set[str] = set()
    for line in lines:
        if line.kind in (LogKind.STATUS, LogKind.RESULT) and isinstance(line.data, dict):
            fields |= _apply_info(session, line.data, line.ts)
    return fields


def _apply_info(session: Session, info: dict[str, Any], ts: datetime) -> set[str]:
    """Absorb a status or result report (validated by ``parse_report``): status first, then
    turns and the Claude session id. A final session takes nothing; cost and usage are not
    the sandbox's to set."""
    if session.is_final:
        return set()
    turns = info.get("num_turns")
    if turns is not None and turns < session.num_turns:
        raise ValidationFailed(
            f"num_turns: Must not decrease (the session has {session.num_turns}).",
            details={"num_turns": [f"Must be at least {session.num_turns}."]},
        )
    # The sandbox's clock dates the run, but never into the future: the token's grace
    # after the end is counted from finished_at.
    fields = _advance(session, info.get("status"), min(ts, timezone.now()), info.get("error"))
    if turns is not None and turns != session.num_turns:
        session.num_turns = turns
        fields.add("num_turns")
    claude_id = info.get("claude_session_id")
    if claude_id and claude_id != session.claude_session_id:
        session.claude_session_id = claude_id
        fields.add("claude_session_id")
    return fields


def _advance(session: Session, status: Any, ts: datetime, error: Any) -> set[str]:
    if status not in STATUS_RANK:
        return set()
    if STATUS_RANK[status] <= STATUS_RANK[session.status]:
        return set()
    session.status = status
    fields = {"status"}
    if STATUS_RANK[status] >= STATUS_RANK[SessionStatus.RUNNING] and not session.started_at:
        session.started_at = ts
        fields.add("started_at")
    if status in FINAL_SESSION_STATUSES:
        session.finished_at = max(ts, session.started_at or ts)
        fields.add("finished_at")
        if isinstance(error, str) and error:
            session.error = truncate(error)
            fields.add("error")
    return fields


def _touch_sandbox(session: Session) -> None:
    # Looked at once per ACTIVITY_RESOLUTION per sandbox and process: spare the busy path a
    # query and an UPDATE per batch.
    if session.sandbox_id is None:
        return
    now = time.monotonic()
    if now - _sandbox_looked_at.get(session.sandbox_id, -inf) < ACTIVITY_RESOLUTION_SECONDS:
        return
    if len(_sandbox_looked_at) >= 4096:
        _sandbox_looked_at.clear()
    _sandbox_looked_at[session.sandbox_id] = now
    sandbox = Sandbox.objects.select_related("agent").filter(pk=session.sandbox_id).first()
    if sandbox is None or sandbox.status not in LIVE_SANDBOX_STATUSES:
        return
    if timezone.now() - sandbox.last_activity_at < ACTIVITY_RESOLUTION:
        return  # another process touched it moments ago
    sandbox_touch(sandbox)


def studio_line_append(*, session: Session, kind: str, text: str) -> LogLine:
    """Append a line written by the studio itself (why a run failed, was cancelled), after
    the session's last line. Call it under the session's row lock, and only once nothing
    more can arrive from the sandbox: a later sandbox line with the same seq is dropped."""
    line = LogLine.objects.create(
        session=session,
        seq=session.last_seq + 1,
        kind=kind,
        text=red(text) if kind == LogKind.ERROR else text,
        data={"source": "studio", "message": text},
        ts=timezone.now(),
    )
    Session.objects.filter(pk=session.pk).update(last_seq=line.seq)
    session.last_seq = line.seq
    publish_lines(session.pk, [line])
    return line


def red(text: str) -> str:
    return f"\x1b[31m{text}\x1b[0m"
