"""A Celery worker is SIGKILLed in the middle of provisioning a sandbox. The deploy task was
acknowledged late, so the broker redelivers it once the visibility timeout passes; the next
worker adopts the half-made jail instead of making a second one. The agent ends with exactly
one sandbox, ready and working, and no jail is leaked. Production topology: daphne serving
the API, a real `celery -A studio worker`, Redis as the broker."""

from __future__ import annotations

import json
import time

import pytest

from sandboxes.backends.local import LocalBackend
from sandboxes.models import Sandbox
from sandboxes.tests.flow import wait_for
from tests.faults.conftest import (
    HttpApi,
    Worker,
    descends_from,
    production,
    sandbox_processes,
)

pytestmark = [production, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

VISIBILITY = 3  # seconds; the default (300) is for real deploys, not a test


def start_worker(studio_env, studio_data, processes, name: str) -> Worker:
    worker = Worker(
        env={**studio_env, "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY)},
        data_dir=studio_data,
        name=name,
    )
    processes.append(worker.start())
    return worker  # tasks wait in the queue until it consumes


def test_a_worker_killed_mid_provision_leaves_one_ready_sandbox_and_no_leaked_jail(
    start_studio, studio_env, studio_data, processes, token
):
    studio = start_studio(worker=False, CELERY_VISIBILITY_TIMEOUT=str(VISIBILITY))
    api = HttpApi(studio.base, token)
    first = start_worker(studio_env, studio_data, processes, "w1")
    agent_id = api.post("/api/agents/", {"name": "deployer"}).json()["id"]
    res = api.post(f"/api/agents/{agent_id}/deploy")
    assert res.status_code == 202, res.text
    sandbox_id = res.json()["deployment"]["id"]
    state_path = studio_data / "sandboxes" / sandbox_id / "state.json"

    # Kill the worker once the jail exists but before the runtime answered: mid-provision.
    def jail_started() -> bool:
        # The state file is written before the jail starts (it claims the uid), and gets
        # the jail's pid once it runs.
        started = state_path.exists() and json.loads(state_path.read_text()).get("pid")
        return bool(started) and Sandbox.objects.get(pk=sandbox_id).status == "creating"

    wait_for(
        jail_started,
        timeout=30,
        interval=0.005,
        what="the jail to exist while the row is creating",
    )
    first.kill()
    killed_at = time.monotonic()
    assert Sandbox.objects.get(pk=sandbox_id).status == "creating", "killed too late to prove it"
    jail_pid = json.loads(state_path.read_text())["pid"]

    start_worker(studio_env, studio_data, processes, "w2")
    box = wait_for(
        lambda: Sandbox.objects.filter(pk=sandbox_id, status__in=["ready", "failed"]).first(),
        timeout=VISIBILITY + 30,
        what="the redelivered deploy to finish",
    )
    assert box.status == "ready", box.error
    assert time.monotonic() - killed_at >= VISIBILITY * 0.9  # it waited for the redelivery

    # One sandbox row, one jail at the provider, and it is the jail the first worker made.
    assert list(Sandbox.objects.filter(agent_id=agent_id).values_list("pk", flat=True)) == [box.pk]
    assert [s.sandbox_id for s in LocalBackend(data_dir=studio_data).list()] == [sandbox_id]
    assert json.loads(state_path.read_text())["pid"] == jail_pid
    stray = [p for p in sandbox_processes(sandbox_id) if not descends_from(p, jail_pid)]
    assert stray == [], "a second jail was started for the same sandbox"

    res = api.post(f"/api/agents/{agent_id}/sandbox/exec", {"command": "echo adopted"})
    assert res.json()["stdout"] == "adopted\n"
    assert api.post(f"/api/agents/{agent_id}/stop").json()["deployment"]["status"] == "stopped"
    wait_for(lambda: not sandbox_processes(sandbox_id), timeout=10, what="the jail to go")
