"""A sandbox dies underneath a running session (its jail's processes are killed, or E2B
deletes the VM). Nobody calls reconcile: the frequent periodic tasks notice within one beat
period. The session ends `failed` saying why, the sandbox row is `failed`, the log stays
contiguous, and the next execute deploys a fresh sandbox."""

from __future__ import annotations

import pytest
from django.conf import settings

from sandboxes.backends.local_jail import kill_until_gone
from sandboxes.models import Sandbox
from sandboxes.tests.conftest import create_agent
from sandboxes.tests.flow import all_lines, deploy_ready, session_done, wait_for
from studio.celery import app
from studio.testing.scripts import slow_script
from tests.faults.conftest import assert_complete_log, sandbox_processes

pytestmark = pytest.mark.django_db(transaction=True)

SLOW_SCRIPT = slow_script()
# Reconciliation (every 300 s) finds dead sandboxes too, but a session should not hang
# for minutes: whatever runs more often than that must notice.
FREQUENT = 60


def run_frequent_periodic_tasks() -> list[str]:
    """Run, once, every beat task scheduled at least every FREQUENT seconds."""
    ran = []
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        if float(entry["schedule"]) <= FREQUENT:
            app.tasks[entry["task"]].apply(throw=True)
            ran.append(entry["task"])
    assert "sandboxes.tasks.sandboxes_reconcile" not in ran
    return ran


def kill_underneath(backend_name: str, sandbox: Sandbox, double) -> None:
    if backend_name == "local":
        # The jail's processes, not backend.kill: its directory and state file stay.
        assert not kill_until_gone(lambda: sandbox_processes(str(sandbox.pk)))
    else:
        double.destroy(sandbox.external_id)


def test_a_sandbox_that_dies_under_a_running_session_is_failed_by_the_periodic_tasks(
    request, live_studio, scripted_model, api, backend
):
    double = request.getfixturevalue("e2b_double") if backend == "e2b" else None
    scripted_model.add_script(SLOW_SCRIPT)
    agent_id = create_agent(api)
    first = deploy_ready(api, agent_id)
    res = api.post(f"/api/agents/{agent_id}/execute", {"prompt": "[[slow]] go"}, format="json")
    session_id = res.json()["session_id"]
    wait_for(
        lambda: any(line["kind"] == "tool_use" for line in all_lines(api, session_id)),
        timeout=60,
        what="the run to reach its tool call",
    )
    assert api.get(f"/api/sessions/{session_id}/").json()["status"] == "running"

    kill_underneath(backend, Sandbox.objects.get(pk=first["id"]), double)
    run_frequent_periodic_tasks()

    box = Sandbox.objects.get(pk=first["id"])
    assert box.status == "failed", (box.status, box.error)
    assert "disappeared" in box.error
    session = session_done(api, session_id, timeout=5)
    assert session["status"] == "failed"
    assert "sandbox disappeared" in session["error"].lower(), session["error"]
    lines = all_lines(api, session_id)
    assert_complete_log(lines)
    assert lines[-1]["kind"] == "error" and "disappeared" in lines[-1]["text"]

    again = api.post(f"/api/agents/{agent_id}/execute", {"prompt": "hello again"}, format="json")
    done = session_done(api, again.json()["session_id"], timeout=60)
    assert done["status"] == "completed", done
    fresh = api.get(f"/api/agents/{agent_id}/sandbox").json()["deployment"]
    assert fresh["id"] != first["id"] and fresh["status"] == "ready"
    assert_complete_log(all_lines(api, done["id"]))
    api.post(f"/api/agents/{agent_id}/stop")


def test_a_busy_sandbox_that_is_alive_is_left_alone(live_studio, scripted_model, api, local):
    scripted_model.add_script(SLOW_SCRIPT)
    agent_id = create_agent(api)
    box = deploy_ready(api, agent_id)
    res = api.post(f"/api/agents/{agent_id}/execute", {"prompt": "[[slow]] go"}, format="json")
    session_id = res.json()["session_id"]
    wait_for(lambda: all_lines(api, session_id), timeout=60, what="the run to start")
    run_frequent_periodic_tasks()
    assert Sandbox.objects.get(pk=box["id"]).status == "ready"
    assert api.get(f"/api/sessions/{session_id}/").json()["status"] == "running"
    api.post(f"/api/agents/{agent_id}/stop")
