"""Runs outlive outages, cancels and server restarts."""

from __future__ import annotations

import os
import time

import pytest

from agent_runtime.procs import group_members, process_start_time, session_processes
from agent_runtime.tests.helpers import Receiver, RuntimeProcess, wait_for

SLOW = {
    "marker": "[[slow]]",
    "turns": [
        [
            {"type": "text", "text": "Step one."},
            {"type": "tool_use", "name": "Bash", "input": {"command": "echo one"}},
        ],
        {
            "delay": 3.0,
            "blocks": [
                {"type": "text", "text": "Step two."},
                {"type": "tool_use", "name": "Bash", "input": {"command": "echo two"}},
            ],
        },
        [{"type": "text", "text": "All done."}],
    ],
}

STUCK = {
    "marker": "[[stuck]]",
    "turns": [
        [
            {
                "type": "tool_use",
                "name": "Bash",
                "input": {"command": "(tail -f /dev/null &) ; echo started; tail -f /dev/null"},
            }
        ]
    ],
}


def kinds(receiver: Receiver, sid: str) -> list[str]:
    return [line["kind"] for line in receiver.session_lines(sid)]


def assert_contiguous_once(receiver: Receiver, sid: str, *, resends: bool = False) -> list[dict]:
    """Every seq stored once, 1..N. With `resends`, a seq may be posted again: a process
    killed between the studio's answer and writing it down resends that batch, which the
    studio's idempotent ingest counts as duplicates (delivery is at least once)."""
    lines = receiver.session_lines(sid)
    assert [x["seq"] for x in lines] == list(range(1, len(lines) + 1))
    posted = [seq for s, seq in receiver.received if s == sid]
    if resends:
        assert sorted(set(posted)) == list(range(1, len(lines) + 1))
    else:
        assert sorted(posted) == list(range(1, len(lines) + 1)), "a line arrived twice"
    return lines


def test_a_studio_outage_mid_run_loses_nothing_and_duplicates_nothing(runtime, model, receiver):
    model.add_script(SLOW)
    assert runtime.execute("s-outage", "[[slow]] go", receiver).status_code == 202
    wait_for(lambda: "tool_result" in kinds(receiver, "s-outage"), timeout=30)
    receiver.stop()
    shipped_before = len(receiver.session_lines("s-outage"))
    time.sleep(10)  # the run goes on (the model answers turn two after 3 s) and finishes
    during = runtime.session("s-outage")
    assert during["status"] == "completed"
    assert during["last_seq"] > during["last_seq_shipped"] == shipped_before
    assert during["alive"], "the run must wait for delivery, not exit"

    back = Receiver(port=receiver.port)
    back.lines, back.received, back.statuses = receiver.lines, receiver.received, receiver.statuses
    back.start()
    try:
        result = wait_for(lambda: back.result("s-outage"), timeout=20)
        lines = assert_contiguous_once(back, "s-outage")
        assert result["data"]["status"] == "completed"
        texts = " ".join(x["text"] for x in lines)
        assert "Step two." in texts and "All done." in texts
        wait_for(lambda: not runtime.session("s-outage")["alive"], timeout=10)
    finally:
        back.stop()


def test_cancel_kills_the_whole_process_tree(runtime, model, receiver):
    model.add_script(STUCK)
    assert runtime.execute("s-cancel", "[[stuck]] go", receiver).status_code == 202
    pid = runtime.session("s-cancel")["pid"]
    # wait until the tool runs: runner, CLI, then bash and two `tail`s in a session of their own
    wait_for(lambda: len(session_processes("s-cancel", pid)) >= 5, timeout=30)
    tails = [p for p in session_processes("s-cancel", pid) if p not in group_members(pid)]
    assert len(tails) >= 3

    response = runtime.request("POST", "/sessions/s-cancel/cancel")
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "cancelled"
    assert not session_processes("s-cancel", pid)
    assert all(process_start_time(p) is None for p in tails)

    def group_gone() -> bool:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(group_gone, timeout=10)  # zombies are reaped too
    result = wait_for(lambda: receiver.result("s-cancel"), timeout=15)
    assert result["data"]["status"] == "cancelled"
    assert "cancelled" in result["text"]
    assert_contiguous_once(receiver, "s-cancel")
    assert runtime.session("s-cancel")["status"] == "cancelled"
    again = runtime.request("POST", "/sessions/s-cancel/cancel")
    assert again.status_code == 200 and again.json()["cancelled"] is False


def test_a_restarted_server_still_reports_the_run_in_flight(runtime, model, receiver):
    model.add_script(SLOW)
    assert runtime.execute("s-restart", "[[slow]] go", receiver).status_code == 202
    wait_for(lambda: "tool_use" in kinds(receiver, "s-restart"), timeout=30)
    pid = runtime.session("s-restart")["pid"]
    runtime.stop()
    assert group_members(pid), "the run died with the server"

    runtime.start()
    seen = runtime.session("s-restart")
    assert seen["status"] == "running" and seen["alive"] and seen["pid"] == pid
    health = runtime.request("GET", "/health").json()
    assert health["busy"] is True and "s-restart" in health["running"]

    wait_for(lambda: receiver.result("s-restart"), timeout=30)
    done = wait_for(lambda: (s := runtime.session("s-restart"))["status"] == "completed" and s)
    assert done["result"]["num_turns"] == 3
    assert_contiguous_once(receiver, "s-restart")


@pytest.fixture
def short_drain_runtime(tmp_path, model):
    rt = RuntimeProcess(tmp_path, model.base_url, {"AGENT_RUNTIME_DRAIN_SECONDS": "1"}).start()
    yield rt
    rt.stop()
    rt.kill_leftovers()


def test_the_server_resends_what_a_finished_run_left_in_its_spool(short_drain_runtime, model):
    rt = short_drain_runtime
    model.add_script(SLOW)
    receiver = Receiver()  # not started: the studio is down for the whole run
    assert rt.execute("s-resend", "[[slow]] go", receiver).status_code == 202
    wait_for(lambda: (s := rt.session("s-resend"))["status"] == "completed" and not s["alive"])
    assert rt.session("s-resend")["last_seq_shipped"] == 0

    receiver.start()
    try:
        wait_for(lambda: receiver.result("s-resend"), timeout=20)
        lines = assert_contiguous_once(receiver, "s-resend")
        wait_for(lambda: rt.session("s-resend")["last_seq_shipped"] == len(lines))
    finally:
        receiver.stop()


def test_a_run_that_dies_is_reported_failed(runtime, model, receiver):
    model.add_script(STUCK)
    assert runtime.execute("s-dies", "[[stuck]] go", receiver).status_code == 202
    pid = runtime.session("s-dies")["pid"]
    wait_for(lambda: "tool_use" in kinds(receiver, "s-dies"), timeout=30)
    os.kill(pid, 9)  # only the runner: an OOM kill, say
    result = wait_for(lambda: receiver.result("s-dies"), timeout=15)
    assert result["data"]["status"] == "failed"
    assert "exited unexpectedly" in result["data"]["error"]
    wait_for(lambda: not session_processes("s-dies", pid), timeout=10)  # CLI and tools too
    assert_contiguous_once(receiver, "s-dies", resends=True)
