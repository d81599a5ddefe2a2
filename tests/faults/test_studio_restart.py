"""The studio's web process dies (SIGKILL) mid-run and comes back on the same address: the
run goes on in its sandbox, the runtime's spool delivers what the studio missed, and the
session completes with every line exactly once."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from sandboxes.tests.flow import all_lines, session_done, wait_for
from tests.faults.conftest import HttpApi, assert_complete_log, sandbox_processes

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

STEPS = 6
# A run of several seconds: each turn runs a Bash command that sleeps.
SCRIPT = {
    "marker": "[[ticks]]",
    "turns": [
        *(
            [
                {"type": "text", "text": f"Step {i}."},
                {
                    "type": "tool_use",
                    "name": "Bash",
                    "input": {"command": f"echo tick-{i}; sleep 0.6"},
                },
            ]
            for i in range(1, STEPS + 1)
        ),
        [{"type": "text", "text": "All ticks done."}],
    ],
}


def _ts(line: dict) -> float:
    return datetime.fromisoformat(line["ts"].replace("Z", "+00:00")).timestamp()


def test_a_sigkilled_studio_restarted_on_its_port_completes_the_run_from_the_spool(
    scripted_model, start_studio, token
):
    scripted_model.add_script(SCRIPT)
    studio = start_studio()
    api = HttpApi(studio.base, token)
    agent_id = api.post("/api/agents/", {"name": "ticker"}).json()["id"]
    res = api.post(f"/api/agents/{agent_id}/execute", {"prompt": "[[ticks]] count"})
    assert res.status_code == 202, res.text
    session_id = res.json()["session_id"]
    wait_for(
        lambda: any("tick-1" in line["text"] for line in all_lines(api, session_id)),
        timeout=60,
        what="the first tick to be stored",
    )
    before = all_lines(api, session_id)

    studio.kill()  # SIGKILL: no shutdown of any kind
    killed_at = time.time()
    time.sleep(3)  # the run goes on; its lines pile up in the runtime's spool
    restarted_at = time.time()
    studio = start_studio(port=studio.port)

    session = session_done(api, session_id, timeout=90)
    assert session["status"] == "completed", session
    lines = all_lines(api, session_id)
    assert_complete_log(lines)
    assert lines[: len(before)] == before
    assert lines[-1]["kind"] == "result"
    assert session["last_seq"] == len(lines)
    texts = "\n".join(line["text"] for line in lines)
    for i in range(1, STEPS + 1):
        assert texts.count(f"tick-{i}") >= 1, f"tick-{i} missing"
    # Lines emitted while no studio was listening reached it through the spool.
    gap = [line for line in lines if killed_at <= _ts(line) <= restarted_at]
    assert gap, "the run emitted nothing while the studio was down: the test proves nothing"

    stopped = api.post(f"/api/agents/{agent_id}/stop").json()["deployment"]
    assert stopped["status"] == "stopped"
    wait_for(lambda: not sandbox_processes(stopped["id"]), timeout=10, what="the jail to go")
