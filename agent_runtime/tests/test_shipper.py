"""The shipper against a stand-in ingest: numbering, batching, retries, spool, rejection."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from agent_runtime.shipper import Shipper
from agent_runtime.state import SessionDir
from agent_runtime.tests.helpers import INGEST_TOKEN, Receiver, wait_for


@pytest.fixture
def session(tmp_path) -> SessionDir:
    s = SessionDir(tmp_path, "s-1")
    s.create()
    return s


def ingest(receiver: Receiver) -> dict:
    return {"url": receiver.url, "token": INGEST_TOKEN}


def test_lines_are_numbered_from_one_and_batched(session, receiver):
    shipper = Shipper(session, ingest(receiver), linger=0.05).start()
    for i in range(500):
        shipper.emit(
            "stdout", f"line {i}", {"i": i}, status={"status": "running"} if i == 0 else None
        )
    assert shipper.close(10)
    lines = receiver.session_lines("s-1")
    assert [x["seq"] for x in lines] == list(range(1, 501))
    assert len(receiver.received) == 500
    assert lines[0]["ts"].endswith("Z") and lines[499]["data"] == {"i": 499}
    assert receiver.statuses["s-1"] == [{"status": "running"}]
    assert session.acked() == 500


class Flaky(Receiver):
    """Answers 503 to the first `failures` posts, then behaves."""

    def __init__(self, failures: int):
        super().__init__()
        self.failures = failures

    def start(self) -> Receiver:
        super().start()
        handler = self._server.RequestHandlerClass
        original = handler.do_POST
        flaky = self

        def do_post(h: BaseHTTPRequestHandler) -> None:
            if flaky.failures > 0:
                flaky.failures -= 1
                h.rfile.read(int(h.headers["Content-Length"]))
                return h._reply(503, {"error": "busy"})
            return original(h)

        handler.do_POST = do_post
        return self


def test_5xx_is_retried_until_accepted(session):
    receiver = Flaky(failures=3).start()
    try:
        shipper = Shipper(session, ingest(receiver), backoff_base=0.01).start()
        shipper.emit("stdout", "hello")
        assert shipper.close(10)
        assert receiver.failures == 0
        assert [x["seq"] for x in receiver.session_lines("s-1")] == [1]
    finally:
        receiver.stop()


def test_a_new_shipper_resends_what_the_spool_holds(session, receiver):
    receiver.stop()  # studio down
    first = Shipper(session, ingest(receiver), backoff_base=0.01, backoff_cap=0.05).start()
    for i in range(3):
        first.emit("stdout", f"line {i}")
    assert not first.close(0.3)
    with session.spool_path.open("a") as f:
        f.write('{"seq": 4, "kind": "std')  # the process died mid-write
    receiver.start()
    second = Shipper(session, ingest(receiver))
    assert second.emit("stdout", "after restart") == 4  # torn record dropped, numbering goes on
    second.start()
    assert second.close(10)
    assert [x["text"] for x in receiver.session_lines("s-1")] == [
        "line 0",
        "line 1",
        "line 2",
        "after restart",
    ]


def test_a_4xx_is_set_aside_and_reported_once(session, receiver):
    receiver.answer_status = 422
    shipper = Shipper(session, ingest(receiver)).start()
    shipper.emit("stdout", "bad line")
    wait_for(lambda: shipper.acked >= 2)  # the line, then the report about it, both refused
    receiver.answer_status = 200
    shipper.emit("stdout", "good line")
    assert shipper.close(10)
    assert [x["seq"] for x in receiver.session_lines("s-1")] == [3]
    rejected = [json.loads(x) for x in (session.path / "rejected.jsonl").read_text().splitlines()]
    assert [r["http_status"] for r in rejected] == [422, 422]
    assert rejected[1]["lines"][0]["data"]["type"] == "ingest_rejected"


def test_the_drain_deadline_bounds_a_long_outage(session):
    shipper = Shipper(session, {"url": "http://127.0.0.1:9/x", "token": "t"}).start()
    shipper.emit("stdout", "lost for now")
    started = time.monotonic()
    assert not shipper.close(0.5)
    assert time.monotonic() - started < 2
    assert session.acked() == 0 and len(session.spool()) == 1


def test_emit_is_thread_safe(session, receiver):
    shipper = Shipper(session, ingest(receiver)).start()
    threads = [
        threading.Thread(target=lambda: [shipper.emit("stdout", "x") for _ in range(100)])
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert shipper.close(10)
    assert [x["seq"] for x in receiver.session_lines("s-1")] == list(range(1, 401))
