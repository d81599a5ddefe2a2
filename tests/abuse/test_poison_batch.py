"""A batch the studio refuses for one bad line neither loops forever nor loses its good lines.

The red team's depth-900 ``data`` crashed the redactor with a 500, and the runtime retried that
batch forever. Now the studio answers 400 naming the limit, and the runtime's real shipper,
posting to the real ingest, resends the refused batch in halves until only the bad line is
left, sets that one aside in rejected.jsonl, and goes on.
"""

from __future__ import annotations

import json
import time

import pytest

from agent_runtime.shipper import Shipper
from agent_runtime.state import SessionDir
from logs.models import LogLine
from studio.tokens import session_token

pytestmark = pytest.mark.django_db(transaction=True)


def deep(depth: int):
    value: object = "bottom"
    for _ in range(depth):
        value = [value]
    return value


def test_one_bad_line_is_set_aside_and_the_rest_land(live_server, make_session, tmp_path):
    session = make_session(status="running")
    spool = SessionDir(tmp_path, str(session.pk))
    spool.create()
    ingest = {
        "url": f"{live_server.url}/api/internal/logs/append",
        "token": session_token(session.pk),
    }
    shipper = Shipper(spool, ingest, linger=0.5, backoff_base=0.01)
    for i in range(1, 41):
        data = deep(900) if i == 17 else {"i": i}
        shipper.emit("stdout", f"line {i}", data)
    started = time.monotonic()
    shipper.start()
    assert shipper.close(30), "the shipper did not settle"
    assert time.monotonic() - started < 30

    stored = dict(LogLine.objects.filter(session=session).values_list("seq", "text"))
    assert sorted(seq for seq in stored if seq <= 40) == [i for i in range(1, 41) if i != 17]
    rejected = [json.loads(x) for x in (spool.path / "rejected.jsonl").read_text().splitlines()]
    assert [[line["seq"] for line in r["lines"]] for r in rejected] == [[17]]
    assert rejected[0]["http_status"] == 400 and "64" in rejected[0]["body"]
    assert "rejected lines 17-17" in stored[41]  # the run's terminal says so, once
    assert spool.acked() == 41


def test_a_token_that_ended_is_set_aside_without_splitting(live_server, make_session, tmp_path):
    session = make_session(status="completed", finished_at="2020-01-01T00:00:00Z")
    spool = SessionDir(tmp_path, str(session.pk))
    spool.create()
    ingest = {
        "url": f"{live_server.url}/api/internal/logs/append",
        "token": session_token(session.pk),
    }
    shipper = Shipper(spool, ingest, linger=0.5)
    for i in range(1, 11):
        shipper.emit("stdout", f"late {i}")
    shipper.start()
    assert shipper.close(10)
    rejected = [json.loads(x) for x in (spool.path / "rejected.jsonl").read_text().splitlines()]
    assert [len(r["lines"]) for r in rejected] == [10, 1]  # the batch, then its report
    assert {r["http_status"] for r in rejected} == {409}
    assert not LogLine.objects.filter(session=session).exists()
