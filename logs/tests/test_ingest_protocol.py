"""The ingest side of the wire contract (agent_runtime/protocol.py): what the runtime ships is
what the studio stores, line kind by line kind, up to the final status."""

from __future__ import annotations

import uuid

import pytest

from agent_runtime import protocol
from agent_runtime.shipper import Shipper
from agent_runtime.state import SessionDir


@pytest.mark.django_db
def test_it_stores_a_line_of_every_protocol_kind(append, make_session):
    from logs.models import LogLine

    session = make_session(status="running")
    lines = [
        protocol.ingest_line(seq=i, kind=kind, text=kind, data={"i": i}, ts="2026-01-01T00:00:00Z")
        for i, kind in enumerate(protocol.LINE_KINDS, start=1)
    ]
    body = protocol.ingest_batch(session_id=str(session.pk), lines=lines)
    res = append(session, body=body)
    assert res.status_code == 200, res.content
    assert res.json()["accepted"] == len(protocol.LINE_KINDS)
    stored = list(LogLine.objects.filter(session=session).values_list("kind", flat=True))
    assert stored == list(protocol.LINE_KINDS)


@pytest.mark.django_db
def test_it_refuses_a_batch_larger_than_the_protocol_allows(append, make_session):
    session = make_session(status="running")
    lines = [
        protocol.ingest_line(seq=i, kind="stdout", text="x", data=None, ts="2026-01-01T00:00:00Z")
        for i in range(1, protocol.MAX_BATCH_LINES + 2)
    ]
    res = append(session, body=protocol.ingest_batch(session_id=str(session.pk), lines=lines))
    assert res.status_code == 400
    assert "lines" in res.json()["message"]


@pytest.mark.django_db(transaction=True)
def test_what_the_runtimes_shipper_sends_the_studio_stores(live_server, make_session, tmp_path):
    from agents.models import Session
    from logs.models import LogLine
    from studio.tokens import session_token

    session = make_session(status="starting")
    run = SessionDir(tmp_path, str(session.pk))
    run.create()
    url = live_server.url + protocol.INGEST_PATH
    shipper = Shipper(run, {"url": url, "token": session_token(session.pk)}).start()
    claude_id = str(uuid.uuid4())
    shipper.emit("status", "running", {"status": "running"}, status={"status": "running"})
    shipper.emit("assistant", "Hello", {"type": "AssistantMessage"})
    # The result record, as runner.build_result makes it (abridged).
    result = {
        "status": "completed",
        "num_turns": 2,
        "total_cost_usd": 0.25,
        "claude_session_id": claude_id,
        "error": None,
    }
    shipper.emit("result", "done", result, status=result)
    assert shipper.close(30), "the studio did not take every line"

    session = Session.objects.get(pk=session.pk)
    assert session.status == "completed"
    assert session.num_turns == 2
    assert float(session.total_cost_usd) == 0  # reported, but metered by the studio, not taken
    assert session.claude_session_id == claude_id
    rows = LogLine.objects.filter(session=session).order_by("seq")
    assert [(r.seq, r.kind, r.text) for r in rows] == [
        (1, "status", "running"),
        (2, "assistant", "Hello"),
        (3, "result", "done"),
    ]
