"""What a sandbox can do with its own ingest token: forge accounting, send hostile JSON, keep
writing after its run ended. Each is refused (400 naming the field or the limit, 409 once the
token ended), nothing is stored, and every page that shows sessions and lines still loads.

The red-team findings (issue 13, items 3 and 4): an append's ``status`` set total_cost_usd to
-1,000,000 and num_turns to 2^41, after which /api/usage/ showed a negative spend and on SQLite
the sessions API and two admin pages answered 500; NaN and 1e30 were 500s; the token kept
working after the session ended and its sandbox stopped; a depth-900 body was a 500 (parsed
before the token was checked) and a depth-900 ``data`` with a valid token crashed the redactor.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from logs.jsonio import MAX_DEPTH
from logs.services import INGEST_GRACE
from studio.tokens import session_token
from tests.abuse.conftest import assert_error_body, assert_unchanged, snapshot

APPEND = "/api/internal/logs/append"
TS = "2026-01-01T00:00:00Z"
CLAUDE_ID = "6f1c2a4e-8b3d-4c5e-9f0a-1b2c3d4e5f60"


def post(client, session, body: dict | str, *, token: str | None = None):
    raw = body if isinstance(body, str) else json.dumps(body)
    token = session_token(session.pk) if token is None else token
    return client.post(
        APPEND, raw, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


def batch(session, seq: int = 4, *, status=None, data=None, kind="stdout") -> dict:
    body = {
        "session_id": str(session.pk),
        "lines": [{"seq": seq, "kind": kind, "text": "x", "data": data, "ts": TS}],
    }
    if status is not None:
        body["status"] = status
    return body


FORGED = [
    # (field, JSON text of the value): the red team's values, and their cousins
    ("total_cost_usd", "-1000000"),
    ("total_cost_usd", "-1e6"),
    ("total_cost_usd", "1e30"),
    ("total_cost_usd", "NaN"),
    ("total_cost_usd", "Infinity"),
    ("total_cost_usd", "-Infinity"),
    ("total_cost_usd", "1e400"),
    ("total_cost_usd", '"0.5"'),
    ("total_cost_usd", "true"),
    ("num_turns", str(2**41)),
    ("num_turns", "-1"),
    ("num_turns", "1.5"),
    ("num_turns", "NaN"),
    ("num_turns", '"3"'),
    ("usage", '{"input_tokens": -5}'),
    ("usage", '{"input_tokens": 1e30}'),
    ("usage", '{"input_tokens": NaN}'),
    ("usage", f'{{"output_tokens": {2**41}}}'),
    ("usage", '"lots"'),
    ("usage", '{"a": {"b": {"c": {"d": 1}}}}'),
    ("claude_session_id", '"../../other-session"'),
    ("claude_session_id", '"x" '),
    ("claude_session_id", "42"),
    ("status", '"hacked"'),
    ("duration_ms", "-1"),
    ("is_error", '"yes"'),
]


@pytest.mark.parametrize(("field", "raw"), FORGED)
@pytest.mark.parametrize("where", ["status", "result_line"])
def test_it_refuses_forged_figures_naming_the_field(client, victim, field, raw, where):
    session = victim["session"]
    if where == "status":
        body = json.dumps(batch(session, status={"status": "running", field: "@@"}))
        named = f"status.{field}"
    else:
        body = json.dumps(batch(session, kind="result", data={"status": "completed", field: "@@"}))
        named = f"lines[0].data.{field}"
    before = snapshot()
    res = post(client, session, body.replace('"@@"', raw))
    error = assert_error_body(res, 400, (where, field, raw))
    assert named in error["message"] or named in error.get("details", {}), error
    assert_unchanged(before, (where, field, raw))


def test_it_never_takes_the_cost_or_usage_from_the_sandbox(client, victim):
    session = victim["session"]
    result = {
        "status": "completed",
        "total_cost_usd": 12.5,
        "usage": {"input_tokens": 10, "output_tokens": 5},
        "num_turns": 3,
        "claude_session_id": CLAUDE_ID,
    }
    res = post(client, session, batch(session, kind="result", data=result, status=result))
    assert res.status_code == 200, res.content
    session.refresh_from_db()
    assert (session.status, session.num_turns, session.claude_session_id) == (
        "completed",
        3,
        CLAUDE_ID,
    )
    assert session.total_cost_usd == 0 and session.usage == {}  # the studio meters those
    stored = session.lines.get(seq=4).data
    assert stored["total_cost_usd"] == 12.5  # kept as what the sandbox reported


def test_it_refuses_a_turn_count_that_goes_back(client, victim):
    session = victim["session"]
    assert post(client, session, batch(session, status={"num_turns": 5})).status_code == 200
    before = snapshot()
    res = post(client, session, batch(session, seq=5, status={"num_turns": 4}))
    assert "num_turns" in assert_error_body(res, 400, "turns back")["message"]
    assert_unchanged(before, "turns back")


def test_a_final_session_accepts_no_status_change(client, victim):
    session = victim["session"]
    type(session).objects.filter(pk=session.pk).update(
        status="cancelled", finished_at=timezone.now(), num_turns=2
    )
    report = {"status": "completed", "num_turns": 9, "claude_session_id": CLAUDE_ID}
    res = post(client, session, batch(session, kind="result", data=report, status=report))
    assert res.status_code == 200, res.content  # the line itself lands: within the grace
    session.refresh_from_db()
    assert (session.status, session.num_turns, session.claude_session_id) == ("cancelled", 2, "")


def test_closing_lines_after_a_cancel_land_within_the_grace(client, victim):
    session = victim["session"]
    finished = timezone.now() - INGEST_GRACE + timedelta(seconds=5)
    type(session).objects.filter(pk=session.pk).update(status="cancelled", finished_at=finished)
    res = post(client, session, batch(session, status={"status": "failed"}))
    assert res.status_code == 200, res.content
    assert session.lines.filter(seq=4).exists()


def test_the_token_ends_when_the_grace_after_the_end_is_over(client, victim):
    session = victim["session"]
    finished = timezone.now() - INGEST_GRACE - timedelta(seconds=1)
    type(session).objects.filter(pk=session.pk).update(status="completed", finished_at=finished)
    before = snapshot()
    res = post(client, session, batch(session))
    assert assert_error_body(res, 409, "after grace")["error"] == "SessionFinished"
    assert_unchanged(before, "after grace")


@pytest.mark.parametrize("status", ["stopped", "failed", "expired"])
def test_the_token_ends_when_the_sandbox_is_gone(client, victim, status):
    session, sandbox = victim["session"], victim["sandbox"]
    type(sandbox).objects.filter(pk=sandbox.pk).update(status=status)
    before = snapshot()
    res = post(client, session, batch(session))
    assert assert_error_body(res, 409, status)["error"] == "SandboxStopped"
    assert_unchanged(before, status)


def test_a_sandbox_clock_in_the_future_cannot_stretch_the_grace(client, victim):
    session = victim["session"]
    line = batch(session, kind="result", data={"status": "completed"})
    line["lines"][0]["ts"] = "2099-01-01T00:00:00Z"
    assert post(client, session, line).status_code == 200
    session.refresh_from_db()
    assert session.finished_at <= timezone.now()


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_deep_json_with_a_valid_token_is_a_400_naming_the_limit(client, victim):
    session = victim["session"]
    before = snapshot()
    for depth in (MAX_DEPTH, 900, 5000, 100_000):
        body = json.dumps(batch(session, data="@@")).replace('"@@"', nested(depth))
        error = assert_error_body(post(client, session, body), 400, depth)
        assert str(MAX_DEPTH) in error["message"], error
        assert_unchanged(before, depth)
    # also in the run report, and on the path through the standard library's parser
    body = json.dumps(batch(session, status={"usage": "@@"}, data=[2**70]))
    error = assert_error_body(post(client, session, body.replace('"@@"', nested(900))), 400, "s")
    assert str(MAX_DEPTH) in error["message"], error
    assert_unchanged(before, "deep status")


def test_data_just_within_the_limit_is_stored_and_shown(client, victim, api):
    session = victim["session"]
    depth = MAX_DEPTH - 3  # the body, its lines list and the line hold the data
    body = json.dumps(batch(session, data="@@")).replace('"@@"', nested(depth))
    assert post(client, session, body).status_code == 200
    res = api.get(f"/api/sessions/{session.pk}/logs?after=3")
    assert res.status_code == 200
    assert json.dumps(res.json()["lines"][0]["data"]) == nested(depth).replace("][", "], [")


def test_hostile_json_without_the_token_is_refused_before_it_is_parsed(client, victim):
    session = victim["session"]
    before = snapshot()
    deep = json.dumps(batch(session, data="@@")).replace('"@@"', nested(100_000))
    for body, status in [
        (deep, 403),  # someone else's token: refused before the body is parsed
        ('{"lines": ' + nested(100_000) + "}", 400),  # no session id at all
        ("{not json", 400),
    ]:
        res = post(client, session, body, token=session_token(uuid.uuid4()))
        assert_error_body(res, status, body[:40])
        assert_unchanged(before, body[:40])


def test_a_session_id_in_the_data_does_not_stand_in_for_the_bodys(client, victim, make_agent):
    """The token is matched against the raw body's session ids; the parsed body's own id must
    then be the one it matched, wherever the other id sits."""
    session = victim["session"]
    mine = type(session).objects.create(agent=make_agent(), prompt="mine")
    body = batch(session, data={"session_id": str(mine.pk)})
    before = snapshot()
    res = post(client, session, body, token=session_token(mine.pk))
    assert_error_body(res, 403, "smuggled id")
    assert_unchanged(before, "smuggled id")


def _page_urls(session, line) -> list[str]:
    urls = [
        "/api/sessions/",
        f"/api/sessions/{session.pk}/",
        f"/api/sessions/{session.pk}/logs",
        f"/api/agents/{session.agent_id}/logs",
        "/api/usage/",
    ]
    for obj in (session, line, session.agent):
        meta = obj._meta
        name = f"admin:{meta.app_label}_{meta.model_name}"
        urls += [reverse(f"{name}_changelist"), reverse(f"{name}_change", args=[obj.pk])]
    urls += [f"/sessions/{session.pk}/", f"/agents/{session.agent_id}/", "/"]
    return urls


def test_every_page_still_loads_after_forged_accounting(
    client, victim, api, user, django_user_model
):
    """Every forged value is sent (each refused), then the largest values the ingest does
    accept; every page that shows the session, its lines or the spend answers 200."""
    session = victim["session"]
    for field, raw in FORGED:
        body = json.dumps(batch(session, status={field: "@@"})).replace('"@@"', raw)
        assert post(client, session, body).status_code == 400, (field, raw)
    largest = {
        "status": "completed",
        "num_turns": 10**6,
        "total_cost_usd": 100_000,
        "usage": {"input_tokens": 10**10, "cache": {"5m": 10**10}, "tier": "x" * 200},
        "duration_ms": 10**10,
        "claude_session_id": CLAUDE_ID,
        "error": "e" * 100_000,
    }
    data = {**largest, "big": 2**70, "deep": json.loads(nested(MAX_DEPTH - 4))}
    res = post(client, session, batch(session, kind="result", data=data, status=largest))
    assert res.status_code == 200, res.content
    staff = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    operator = Client()
    operator.force_login(staff)
    browser = Client()
    browser.force_login(user)
    line = session.lines.get(seq=4)
    assert admin.site.is_registered(type(line))
    for url in _page_urls(session, line):
        viewer = operator if url.startswith("/admin/") else browser
        res = (api if url.startswith("/api/") else viewer).get(url)
        assert res.status_code == 200, (url, res.status_code, res.content[:300])
    usage = api.get("/api/usage/").json()
    assert all(not str(v).startswith("-") for v in usage.values() if not isinstance(v, list))
