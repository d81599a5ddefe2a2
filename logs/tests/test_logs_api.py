from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.models import Secret
from logs.tests.conftest import line, lines


def test_it_lists_the_users_sessions_newest_first(api, make_session, make_agent, other_user):
    old, new = make_session(prompt="one"), make_session(prompt="two")
    make_session(make_agent(owner=other_user))
    r = api.get("/api/sessions/")
    assert r.status_code == 200
    assert [s["id"] for s in r.json()["results"]] == [str(new.pk), str(old.pk)]
    assert r.json()["count"] == 2


def test_it_filters_sessions_by_agent(api, make_session, make_agent):
    mine = make_session()
    make_session(make_agent(name="other"))
    r = api.get(f"/api/sessions/?agent={mine.agent_id}")
    assert [s["id"] for s in r.json()["results"]] == [str(mine.pk)]


def test_it_rejects_a_malformed_agent_filter(api):
    r = api.get("/api/sessions/?agent=nope")
    assert r.status_code == 400
    assert "agent" in r.json()["details"]


def test_it_shows_a_session_with_cost_and_usage(api, make_session):
    session = make_session(total_cost_usd=Decimal("0.5"), usage={"input_tokens": 3}, num_turns=2)
    r = api.get(f"/api/sessions/{session.pk}/")
    assert r.status_code == 200
    body = r.json()
    assert body["total_cost_usd"] == 0.5
    assert body["usage"] == {"input_tokens": 3}
    assert body["agent"] == str(session.agent_id)
    for key in ("status", "started_at", "finished_at", "duration_seconds", "num_turns"):
        assert key in body
    for key in ("claude_session_id", "error", "last_seq", "sandbox", "resumed_from"):
        assert key in body


def test_another_users_session_is_404(other_api, make_session):
    session = make_session()
    assert other_api.get(f"/api/sessions/{session.pk}/").status_code == 404
    assert other_api.get(f"/api/sessions/{session.pk}/logs").status_code == 404
    assert other_api.get(f"/api/agents/{session.agent_id}/logs").status_code == 404
    assert other_api.get("/api/sessions/").json()["count"] == 0


def test_an_unknown_session_is_404(api):
    assert api.get(f"/api/sessions/{uuid.uuid4()}/logs").status_code == 404


def test_anonymous_requests_are_refused(client, make_session):
    session = make_session()
    assert client.get(f"/api/sessions/{session.pk}/logs").status_code in (401, 403)


def test_it_pages_logs_by_seq(api, append, make_session):
    session = make_session()
    append(session, lines(1, 12))
    r = api.get(f"/api/sessions/{session.pk}/logs?after=0&limit=5")
    assert [x["seq"] for x in r.json()["lines"]] == [1, 2, 3, 4, 5]
    assert r.json()["next_after"] == 5
    assert r.json()["session"]["last_seq"] == 12
    r = api.get(f"/api/sessions/{session.pk}/logs?after=10&limit=5")
    assert [x["seq"] for x in r.json()["lines"]] == [11, 12]
    r = api.get(f"/api/sessions/{session.pk}/logs?after=12")
    assert r.json()["lines"] == []
    assert r.json()["next_after"] == 12


def test_a_log_line_has_the_ingest_shape(api, append, make_session):
    session = make_session()
    append(session, [line(1, "tool_use", text="● Bash(ls)", data={"a": 1})])
    (got,) = api.get(f"/api/sessions/{session.pk}/logs").json()["lines"]
    assert got == {
        "seq": 1,
        "kind": "tool_use",
        "text": "● Bash(ls)",
        "data": {"a": 1},
        "ts": "2026-01-01T00:00:00Z",
    }


def test_the_log_page_costs_the_same_queries_at_any_depth(api, append, make_session):
    session = make_session()
    for first in range(1, 3001, 1000):
        append(session, lines(first, first + 999))
    counts = []
    for after in (0, 2500):
        with CaptureQueriesContext(connection) as queries:
            r = api.get(f"/api/sessions/{session.pk}/logs?after={after}&limit=100")
        assert r.status_code == 200
        counts.append(len(queries))
        logs_query = next(q["sql"] for q in queries if "logs_logline" in q["sql"])
        assert "OFFSET" not in logs_query.upper()
    assert counts[0] == counts[1]


def test_it_caps_the_log_page_size(api, append, make_session):
    session = make_session()
    r = api.get(f"/api/sessions/{session.pk}/logs?limit=999999")
    assert r.status_code == 200
    r = api.get(f"/api/sessions/{session.pk}/logs?limit=0")
    assert r.status_code == 400
    r = api.get(f"/api/sessions/{session.pk}/logs?after=-1")
    assert r.status_code == 400


def test_logs_read_back_redacted(api, append, agent, make_session):
    secret = Secret(agent=agent, name="TOKEN")
    secret.set_value("s3cr3t-value")
    secret.save()
    session = make_session()
    append(session, [line(1, text="the s3cr3t-value", data={"v": "s3cr3t-value"})])
    (got,) = api.get(f"/api/sessions/{session.pk}/logs").json()["lines"]
    assert (got["text"], got["data"]) == ("the ***", {"v": "***"})


def test_agent_logs_are_the_newest_across_sessions(api, append, make_session, agent):
    first, second = make_session(), make_session()
    append(first, lines(1, 3))
    append(second, lines(1, 2))
    r = api.get(f"/api/agents/{agent.pk}/logs?limit=3")
    assert r.status_code == 200
    got = [(x["session_id"], x["seq"]) for x in r.json()["lines"]]
    assert got == [(str(second.pk), 2), (str(second.pk), 1), (str(first.pk), 3)]
    assert r.json()["next_offset"] == 3
    r = api.get(f"/api/agents/{agent.pk}/logs?limit=3&offset=3")
    assert [x["seq"] for x in r.json()["lines"]] == [2, 1]
    assert r.json()["next_offset"] is None


def test_every_logs_route_is_in_the_schema(api):
    r = api.get("/api/schema/?format=json")
    paths = r.json()["paths"]
    for p in (
        "/api/sessions/",
        "/api/sessions/{session_id}/",
        "/api/sessions/{session_id}/logs",
        "/api/agents/{agent_id}/logs",
        "/api/internal/logs/append",
    ):
        assert p in paths, p
    schemas = r.json()["components"]["schemas"]
    assert set(schemas["AppendInputRequest"]["properties"]) >= {"session_id", "lines", "status"}
    assert set(schemas["AppendOutput"]["properties"]) == {"accepted", "duplicates", "last_seq"}
    assert set(schemas["SessionLogsOutput"]["properties"]) == {"lines", "next_after", "session"}
