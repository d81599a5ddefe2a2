"""Redis (broker and channel layer) stops mid-run and comes back empty (no persistence).

Ingest keeps storing while it is down; a WebSocket client watching the run ends with every
line exactly once (the socket catches up from the database, reconnecting with `after=` if
it was dropped); a prompt accepted during the outage still runs once Redis is back: the
outage delays background work, it does not lose what the API acknowledged."""

from __future__ import annotations

import json
import threading
import time

import pytest
from websockets.sync.client import connect

from sandboxes.tests.flow import all_lines, session_done, wait_for
from studio.testing.scripts import ticking_script
from tests.faults.conftest import HttpApi, assert_complete_log, production

pytestmark = [production, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

STEPS = 8
SCRIPT = ticking_script(STEPS, 0.5)


class Watcher(threading.Thread):
    """A client of ws/sessions/<id>/ that reconnects with ?after=<last seq> when dropped."""

    def __init__(self, base: str, session_id: str, token: str):
        super().__init__(daemon=True)
        self.url = base.replace("http://", "ws://") + f"/ws/sessions/{session_id}/"
        self.origin = base  # production refuses sockets without an allowed Origin
        self.headers = {"Authorization": f"Token {token}"}
        self.lines: list[dict] = []
        self.status = ""
        self.connections = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            after = self.lines[-1]["seq"] if self.lines else 0
            try:
                with connect(
                    f"{self.url}?after={after}", origin=self.origin, additional_headers=self.headers
                ) as ws:
                    self.connections += 1
                    while not self.stop.is_set():
                        try:
                            message = json.loads(ws.recv(timeout=0.2))
                        except TimeoutError:
                            continue
                        if message["type"] == "lines":
                            self.lines += message["lines"]
                        elif message["type"] == "session":
                            self.status = message["session"]["status"]
            except Exception:  # dropped or refused: a browser would retry too
                time.sleep(0.2)


def test_a_redis_outage_mid_run_loses_no_line_and_no_accepted_task(
    scripted_model, start_studio, private_redis, token
):
    scripted_model.add_script(SCRIPT)
    studio = start_studio()
    api = HttpApi(studio.base, token)
    watched_agent = api.post("/api/agents/", {"name": "watched"}).json()["id"]
    later_agent = api.post("/api/agents/", {"name": "later"}).json()["id"]
    res = api.post(f"/api/agents/{watched_agent}/execute", {"prompt": "[[ticks]] count"})
    session_id = res.json()["session_id"]
    watcher = Watcher(studio.base, session_id, token)
    watcher.start()
    wait_for(
        lambda: any("tick-1" in line["text"] for line in watcher.lines),
        timeout=60,
        what="the first tick, live",
    )

    private_redis.stop()
    stored_at_stop = len(all_lines(api, session_id))
    wait_for(
        lambda: len(all_lines(api, session_id)) >= stored_at_stop + 4,
        timeout=20,
        what="lines stored while Redis is down",
    )
    # Accepted while the broker is down: the API must not 500 and leave a row that nothing
    # will ever start.
    res = api.post(f"/api/agents/{later_agent}/execute", {"prompt": "run me when you can"})
    assert res.status_code == 202, res.text
    later_id = res.json()["session_id"]
    time.sleep(1)
    private_redis.start()

    session = session_done(api, session_id, timeout=60)
    assert session["status"] == "completed", session
    stored = all_lines(api, session_id)
    assert_complete_log(stored)
    wait_for(
        lambda: len(watcher.lines) >= len(stored) and watcher.status == "completed",
        timeout=40,
        what="the watcher to catch up",
    )
    assert [line["seq"] for line in watcher.lines] == [line["seq"] for line in stored]
    assert [line["text"] for line in watcher.lines] == [line["text"] for line in stored]
    # With Redis back, a quiet socket stays open (longer than the layer's 5 s blocking read).
    connections = watcher.connections
    time.sleep(7)
    assert watcher.connections == connections, "an idle socket was dropped"
    watcher.stop.set()
    watcher.join(timeout=5)

    # The prompt accepted during the outage runs once the broker is back.
    later = session_done(api, later_id, timeout=90)
    assert later["status"] == "completed", later
    assert_complete_log(all_lines(api, later_id))
    for agent_id in (watched_agent, later_agent):
        api.post(f"/api/agents/{agent_id}/stop")
