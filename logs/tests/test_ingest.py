from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from datetime import timezone as timezone_offset

import pytest
from django.utils import timezone

from agents.models import SessionStatus
from logs import services
from logs.models import LogLine
from logs.serializers import MAX_LINE_CHARS, LineIn, line_payload, lines_frame
from logs.tests.conftest import APPEND_URL, line, lines
from sandboxes.models import Sandbox
from studio.tokens import session_token


def stored(session) -> list[int]:
    return list(LogLine.objects.filter(session=session).values_list("seq", flat=True))


# ---- auth ------------------------------------------------------------------------------


def test_it_accepts_a_batch_with_the_sessions_token(append, make_session):
    session = make_session()
    r = append(session, lines(1, 3))
    assert r.status_code == 200, r.json()
    assert r.json() == {"accepted": 3, "duplicates": 0, "last_seq": 3}
    assert stored(session) == [1, 2, 3]


def test_it_rejects_a_missing_token_with_401(append, make_session):
    session = make_session()
    r = append(session, lines(1, 1), token="")
    assert r.status_code == 401
    assert r.json()["error"] == "NotAuthenticated"
    assert stored(session) == []


def test_it_rejects_a_malformed_token_with_401(append, make_session):
    r = append(make_session(), lines(1, 1), token="not-a-token")
    assert r.status_code == 401


def test_it_rejects_another_sessions_token_with_403(append, make_session):
    session, other = make_session(), make_session()
    r = append(session, lines(1, 1), token=session_token(other.pk))
    assert r.status_code == 403
    assert r.json()["error"] == "PermissionDenied"
    assert stored(session) == []


def test_it_does_not_reveal_unknown_sessions_to_a_wrong_token(append, make_session):
    session = make_session()
    body = {"session_id": str(uuid.uuid4()), "lines": lines(1, 1)}
    r = append(session, body=body)  # the token of an existing session, not of this id
    assert r.status_code == 403


def test_it_answers_404_for_an_unknown_session_with_its_own_token(append, make_session):
    missing = uuid.uuid4()
    body = {"session_id": str(missing), "lines": lines(1, 1)}
    r = append(make_session(), body=body, token=session_token(missing))
    assert r.status_code == 404
    assert r.json()["error"] == "NotFound"


def test_it_ignores_session_cookies_and_csrf(client, user, make_session):
    session = make_session()
    client.force_login(user)
    r = client.post(
        APPEND_URL,
        {"session_id": str(session.pk), "lines": lines(1, 1)},
        content_type="application/json",
    )
    assert r.status_code == 401  # a logged-in browser is no sandbox


# ---- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"seq": 0}, "lines[0].seq"),
        ({"seq": -1}, "lines[0].seq"),
        ({"seq": "1"}, "lines[0].seq"),
        ({"seq": True}, "lines[0].seq"),
        ({"kind": "shout"}, "lines[0].kind"),
        ({"ts": "yesterday"}, "lines[0].ts"),
        ({"ts": None}, "lines[0].ts"),
        ({"text": 12}, "lines[0].text"),
    ],
)
def test_it_rejects_a_malformed_line_naming_it(append, make_session, bad, field):
    session = make_session()
    r = append(session, [{**line(1), **bad}])
    assert r.status_code == 400
    assert r.json()["error"] == "ValidationError"
    assert field in r.json()["details"]
    assert stored(session) == []


def test_it_rejects_a_batch_that_is_not_a_list(append, make_session):
    session = make_session()
    r = append(session, body={"session_id": str(session.pk), "lines": "nope"})
    assert r.status_code == 400
    assert "lines" in r.json()["message"]


def test_it_rejects_too_many_lines(append, make_session):
    session = make_session()
    r = append(session, lines(1, 1001))
    assert r.status_code == 400
    assert "1000" in r.json()["message"]


def test_it_rejects_a_seq_twice_in_one_batch(append, make_session):
    r = append(make_session(), [line(1), line(1)])
    assert r.status_code == 400


def test_it_rejects_a_missing_session_id(append, make_session):
    r = append(make_session(), body={"lines": []})
    assert r.status_code == 400
    assert "session_id" in r.json()["details"]


def test_it_rejects_invalid_json(make_session, client):
    session = make_session()
    r = client.post(
        APPEND_URL,
        "{not json",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {session_token(session.pk)}",
    )
    assert r.status_code == 400
    assert r.json()["error"]


def test_it_answers_413_to_a_huge_body(make_session, client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    session = make_session()
    r = client.post(
        APPEND_URL,
        {"session_id": str(session.pk), "lines": lines(1, 1, text="x" * 20_000)},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {session_token(session.pk)}",
    )
    assert r.status_code == 413
    assert r.json()["error"] == "PayloadTooLarge"


def test_it_truncates_an_overlong_line_instead_of_rejecting_it(append, make_session):
    session = make_session()
    r = append(session, [line(1, text="a" * (MAX_LINE_CHARS + 10)), line(2)])
    assert r.status_code == 200
    text = LogLine.objects.get(session=session, seq=1).text
    assert text.startswith("a" * MAX_LINE_CHARS)
    assert text.endswith("… [truncated 10 chars]")
    assert stored(session) == [1, 2]


def test_it_keeps_extra_line_fields_harmless(append, make_session):
    session = make_session()
    r = append(session, [line(1, extra_field="x")], status={"status": "running"})
    assert r.status_code == 200


def test_it_refuses_an_unknown_field_in_the_status_object(append, make_session):
    session = make_session()
    r = append(session, [line(1)], status={"status": "running", "pid": 4})
    assert r.status_code == 400
    assert "status.pid" in r.json()["details"]
    assert stored(session) == []


def test_it_stores_nul_characters_as_replacement(append, make_session):
    session = make_session()
    r = append(session, [line(1, text="a\x00b", data={"k": "c\x00d"})])
    assert r.status_code == 200
    stored_line = LogLine.objects.get(session=session)
    assert stored_line.text == "a\ufffdb"
    assert stored_line.data == {"k": "c\ufffdd"}


def post_raw(client, session, raw: str):
    return client.post(
        APPEND_URL,
        raw,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {session_token(session.pk)}",
    )


def test_it_keeps_integers_beyond_64_bits_exact(make_session, client):
    session = make_session()
    big = 2**70 + 1  # a float would round it
    body = {"session_id": str(session.pk), "lines": [line(1, data={"n": big, "m": -(2**64)})]}
    r = post_raw(client, session, json.dumps(body))
    assert r.status_code == 200, r.content
    assert LogLine.objects.get(session=session).data == {"n": big, "m": -(2**64)}


@pytest.mark.parametrize(
    ("raw_value", "named"),
    [('"\\ud800 alone"', "surrogate"), ("NaN", "NaN"), ("Infinity", "Infinity")],
)
def test_it_refuses_json_it_cannot_store_with_400(make_session, client, raw_value, named):
    session = make_session()
    body = json.dumps({"session_id": str(session.pk), "lines": [line(1, data={"v": "X"})]})
    r = post_raw(client, session, body.replace('"X"', raw_value))
    assert r.status_code == 400, r.content
    assert named in r.json()["message"]
    assert stored(session) == []


def test_it_masks_a_non_ascii_secret_beside_a_huge_integer(append, make_session, agent):
    from agents.models import Secret

    secret = Secret(agent=agent, name="ODD")
    secret.set_value("clé-secrète-42")
    secret.save()
    session = make_session()
    r = append(session, [line(1, data={"n": 2**70, "out": "got clé-secrète-42"})])
    assert r.status_code == 200
    assert LogLine.objects.get(session=session).data == {"n": 2**70, "out": "got ***"}


# ---- idempotency -----------------------------------------------------------------------


def test_it_stores_a_retried_batch_once(append, make_session):
    session = make_session()
    append(session, lines(1, 5))
    r = append(session, lines(1, 5))
    assert r.json() == {"accepted": 0, "duplicates": 5, "last_seq": 5}
    assert stored(session) == [1, 2, 3, 4, 5]


def test_it_counts_overlapping_batches_honestly(append, make_session):
    session = make_session()
    append(session, lines(1, 5))
    r = append(session, lines(4, 8))
    assert r.json() == {"accepted": 3, "duplicates": 2, "last_seq": 8}
    assert stored(session) == list(range(1, 9))


def test_it_keeps_the_first_copy_of_a_line(append, make_session):
    session = make_session()
    append(session, [line(1, text="first")])
    append(session, [line(1, text="second")])
    assert LogLine.objects.get(session=session, seq=1).text == "first"


def test_last_seq_is_the_highest_seq_stored(append, make_session):
    session = make_session()
    append(session, lines(1, 3))
    r = append(session, lines(7, 8))  # a batch the studio never got leaves a hole
    assert r.json()["last_seq"] == 8
    r = append(session, lines(4, 6))
    assert r.json() == {"accepted": 3, "duplicates": 0, "last_seq": 8}
    session.refresh_from_db()
    assert session.last_seq == 8


# ---- session updates -------------------------------------------------------------------

CLAUDE_ID = "0b5f8c1e-2d3a-4b6c-9e7f-1a2b3c4d5e6f"
RESULT = {
    "status": "completed",
    "total_cost_usd": 0.0221,
    "usage": {"input_tokens": 10, "output_tokens": 5},
    "num_turns": 2,
    "duration_ms": 600,
    "claude_session_id": CLAUDE_ID,
    "error": None,
}


def test_a_status_line_starts_the_session(append, make_session):
    session = make_session(status=SessionStatus.STARTING)
    append(session, [line(1, "status", data={"status": "running"}, ts="2026-01-01T10:00:00Z")])
    session.refresh_from_db()
    assert session.status == "running"
    assert session.started_at.isoformat() == "2026-01-01T10:00:00+00:00"


def test_a_result_line_finishes_the_session_with_its_figures(append, make_session):
    session = make_session(status=SessionStatus.RUNNING)
    r = append(
        session,
        [line(1, "assistant"), line(2, "result", data=RESULT, ts="2026-01-01T10:00:05Z")],
    )
    assert r.status_code == 200
    session.refresh_from_db()
    assert session.status == "completed"
    assert session.num_turns == 2
    assert session.claude_session_id == CLAUDE_ID
    assert session.finished_at.isoformat() == "2026-01-01T10:00:05+00:00"
    assert session.last_seq == 2


def test_a_failed_result_records_the_error(append, make_session):
    session = make_session(status=SessionStatus.RUNNING)
    append(session, [line(1, "result", data={**RESULT, "status": "failed", "error": "boom"})])
    session.refresh_from_db()
    assert (session.status, session.error) == ("failed", "boom")


def test_the_batch_status_object_updates_the_session(append, make_session):
    session = make_session(status=SessionStatus.STARTING)
    append(session, lines(1, 1), status={"status": "running", "claude_session_id": CLAUDE_ID})
    session.refresh_from_db()
    assert (session.status, session.claude_session_id) == ("running", CLAUDE_ID)


def test_late_lines_are_stored_without_reopening_the_session(append, make_session):
    session = make_session(status=SessionStatus.CANCELLED, finished_at=timezone.now())
    r = append(session, [line(1, "status", data={"status": "running"}), line(2)])
    assert r.json()["accepted"] == 2
    session.refresh_from_db()
    assert session.status == "cancelled"
    assert stored(session) == [1, 2]


def test_a_status_never_steps_back(append, make_session):
    session = make_session(status=SessionStatus.RUNNING)
    append(session, [line(1, "status", data={"status": "starting"})])
    session.refresh_from_db()
    assert session.status == "running"


def test_it_bumps_the_sandbox_activity_clock(append, make_session, agent):
    old = timezone.now() - timedelta(hours=1)
    sandbox = Sandbox.objects.create(
        agent=agent, backend="local", status="ready", last_activity_at=old, expires_at=old
    )
    session = make_session(sandbox=sandbox)
    before = timezone.now()
    append(session, lines(1, 1))
    sandbox.refresh_from_db()
    assert sandbox.last_activity_at >= before
    assert sandbox.expires_at - sandbox.last_activity_at == timedelta(seconds=agent.timeout_seconds)


def test_it_leaves_a_sandbox_touched_moments_ago_alone(append, make_session, agent):
    now = timezone.now()
    sandbox = Sandbox.objects.create(
        agent=agent, backend="local", status="ready", last_activity_at=now, expires_at=now
    )
    append(make_session(sandbox=sandbox), lines(1, 1))
    sandbox.refresh_from_db()
    assert sandbox.expires_at == now


def test_it_does_not_touch_a_stopped_sandbox(append, make_session, agent):
    old = timezone.now() - timedelta(hours=1)
    sandbox = Sandbox.objects.create(
        agent=agent, backend="local", status="stopped", last_activity_at=old, expires_at=old
    )
    append(make_session(sandbox=sandbox), lines(1, 1))
    sandbox.refresh_from_db()
    assert sandbox.last_activity_at == old


# ---- publishing ------------------------------------------------------------------------


class _Layer:
    def __init__(self, fail: bool = False):
        self.fail, self.sent = fail, []

    async def group_send(self, group, message):
        if self.fail:
            raise ConnectionError("redis is down")
        self.sent.append((group, message))


@pytest.fixture
def layer(monkeypatch) -> _Layer:
    """A channel layer that records what the ingest publishes."""
    recorder = _Layer()
    monkeypatch.setattr("logs.events.get_channel_layer", lambda: recorder)
    return recorder


def test_it_publishes_once_per_batch_after_commit(
    append, make_session, django_capture_on_commit_callbacks, layer
):
    session = make_session(status=SessionStatus.RUNNING)
    with django_capture_on_commit_callbacks() as callbacks:
        append(session, lines(1, 3))
        assert layer.sent == []  # nothing before commit
    for callback in callbacks:
        callback()
    assert [g for g, _ in layer.sent] == [f"session.{session.pk}"]
    message = layer.sent[0][1]
    assert (message["type"], message["first_seq"], message["last_seq"]) == ("session.lines", 1, 3)
    frame = json.loads(message["frame"])  # what every socket on the session is sent
    assert frame["type"] == "lines" and [x["seq"] for x in frame["lines"]] == [1, 2, 3]
    replayed = [line_payload(x) for x in LogLine.objects.filter(session=session).order_by("seq")]
    assert frame["lines"] == replayed  # the live frame says what a replay from the database says


@pytest.mark.parametrize(
    "ts",
    [
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, 120, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone_offset(timedelta(hours=2))),
    ],
)
@pytest.mark.parametrize("data", [None, {"é": ["ü", 1.5, True]}, {"n": 2**70}])
def test_a_frame_holds_each_line_as_line_payload_says(ts, data):
    batch = [LineIn(seq=7, kind="assistant", text="\x1b[1mhé\x1b[0m", data=data, ts=ts)]
    frame = json.loads(lines_frame(batch))
    assert frame == {"type": "lines", "lines": [line_payload(x) for x in batch]}


def test_a_batch_with_a_hole_is_published_without_a_frame(
    append, make_session, django_capture_on_commit_callbacks, layer
):
    session = make_session(status=SessionStatus.RUNNING)
    with django_capture_on_commit_callbacks(execute=True):
        append(session, [line(1), line(3)])
    message = layer.sent[0][1]
    assert (message["first_seq"], message["last_seq"], message["frame"]) == (1, 3, None)


def test_a_status_change_is_published_to_session_and_agent(
    append, make_session, django_capture_on_commit_callbacks, layer
):
    session = make_session(status=SessionStatus.RUNNING)
    with django_capture_on_commit_callbacks(execute=True):
        append(session, [line(1, "result", data=RESULT)])
    changed = [(g, m) for g, m in layer.sent if m["type"] == "session.changed"]
    assert {g for g, _ in changed} == {f"session.{session.pk}", f"agent.{session.agent_id}"}
    assert changed[0][1]["session"]["status"] == "completed"


def test_a_channel_layer_failure_does_not_fail_the_append(
    append, make_session, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    monkeypatch.setattr("logs.events.get_channel_layer", lambda: _Layer(fail=True))
    session = make_session()
    with django_capture_on_commit_callbacks(execute=True):
        r = append(session, lines(1, 2))
    assert r.status_code == 200
    assert stored(session) == [1, 2]
    assert "channel layer publish failed" in caplog.text


def test_a_fully_duplicate_batch_publishes_nothing(
    append, make_session, django_capture_on_commit_callbacks, layer
):
    session = make_session()
    append(session, lines(1, 2))
    with django_capture_on_commit_callbacks(execute=True):
        append(session, lines(1, 2))
    assert layer.sent == []


def test_it_stays_idempotent_when_a_writer_skipped_the_lock(append, make_session, monkeypatch):
    session = make_session()
    append(session, lines(1, 2))
    # As if a row appeared after the duplicate check: the append must not fail.
    check, calls = services._stored_seqs, []

    def blind_once(*args):
        calls.append(args)
        return set() if len(calls) == 1 else check(*args)

    monkeypatch.setattr("logs.services._stored_seqs", blind_once)
    r = append(session, lines(2, 3))
    assert r.status_code == 200
    assert stored(session) == [1, 2, 3]
    assert LogLine.objects.get(session=session, seq=2).text == "line 2"
