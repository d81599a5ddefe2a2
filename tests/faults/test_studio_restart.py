"""The studio restarts while its local sandboxes live on.

Killed (SIGKILL) mid-run and started again on the same address: the run goes on in its
sandbox, the runtime's spool delivers what the studio missed, and the session completes with
every line exactly once. Restarted with idle jails: the one a live row owns still answers
exec, files and execute; the one nothing owns is killed; no process is left over."""

from __future__ import annotations

import signal
import time
from datetime import datetime

import pytest
from django.utils import timezone

from sandboxes.models import Sandbox
from sandboxes.tests.flow import all_lines, deploy_ready, session_done, wait_for
from studio.testing.scripts import ticking_script
from tests.faults.conftest import (
    HttpApi,
    assert_complete_log,
    processes_mentioning,
    sandbox_processes,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

STEPS = 6
SCRIPT = ticking_script(STEPS, 0.6)


def _ts(line: dict) -> float:
    return datetime.fromisoformat(line["ts"].replace("Z", "+00:00")).timestamp()


def test_a_sigkilled_studio_restarted_on_its_port_completes_the_run_from_the_spool(
    scripted_model, start_studio, token, monkeypatch
):
    # The run's model calls go through the studio's gateway (docs/gateway.md): while it is
    # down they fail to connect, and the CLI retries them with backoff, as it does by
    # default (ten retries). The suite's usual one retry would give up within a second.
    monkeypatch.setenv("CLAUDE_CODE_MAX_RETRIES", "8")
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


def test_a_restarted_studio_finds_its_live_jails_and_kills_the_ones_no_row_owns(
    scripted_model, start_studio, studio_data, token
):
    studio = start_studio()
    api = HttpApi(studio.base, token)
    kept_agent = api.post("/api/agents/", {"name": "kept"}).json()["id"]
    dropped_agent = api.post("/api/agents/", {"name": "dropped"}).json()["id"]
    kept = deploy_ready(api, kept_agent)["id"]
    dropped = deploy_ready(api, dropped_agent)["id"]
    assert api.post(
        f"/api/agents/{kept_agent}/sandbox/files",
        {"files": [{"path": "before.txt", "content": "written before the restart"}]},
    ).ok
    kept_pids = sandbox_processes(kept)
    assert kept_pids and sandbox_processes(dropped)

    studio.kill(signal.SIGTERM)
    # While the studio is down its record of one sandbox ends (an operator's edit, a restored
    # backup): nothing owns that jail any more.
    Sandbox.objects.filter(pk=dropped).update(status="stopped", stopped_at=timezone.now())
    assert sandbox_processes(dropped), "the jail must outlive the studio for this test"
    studio = start_studio(port=studio.port)

    # Reconciliation at worker start kills the unowned jail...
    wait_for(lambda: not sandbox_processes(dropped), timeout=30, what="the unowned jail killed")
    # ...and the owned one is still the same jail, and still serves everything.
    assert Sandbox.objects.get(pk=kept).status == "ready"
    assert set(kept_pids) <= set(sandbox_processes(kept))
    res = api.post(
        f"/api/agents/{kept_agent}/sandbox/exec", {"command": "cat before.txt; echo; id -u"}
    )
    assert res.status_code == 200, res.text
    assert res.json()["stdout"] == "written before the restart\n1000\n"
    listing = api.get(f"/api/agents/{kept_agent}/sandbox/files").json()
    assert "before.txt" in {e["name"] for e in listing["entries"]}
    res = api.post(f"/api/agents/{kept_agent}/execute", {"prompt": "still there?"})
    session = session_done(api, res.json()["session_id"], timeout=60)
    assert session["status"] == "completed", session
    assert session["sandbox"] == kept
    assert_complete_log(all_lines(api, session["id"]))

    # Stopped through the new studio: no process of either jail is left anywhere.
    assert api.post(f"/api/agents/{kept_agent}/stop").json()["deployment"]["status"] == "stopped"
    root = str(studio_data / "sandboxes")
    wait_for(lambda: not processes_mentioning(root), timeout=10, what="no jail process left")
    assert not sandbox_processes(kept) and not sandbox_processes(dropped)
