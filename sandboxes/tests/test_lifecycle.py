"""Runs that end badly, sandboxes that die or expire, and the studio cleaning up after them."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from agents.models import Session
from sandboxes.backends import get_backend, override_backend
from sandboxes.backends.base import CreateSpec
from sandboxes.backends.local import LocalBackend
from sandboxes.backends.local_jail import proc_cmdline, processes_of_uid
from sandboxes.models import Sandbox
from sandboxes.services.lifecycle import sandboxes_reap, sandboxes_reconcile
from sandboxes.services.sessions import sessions_diagnose_silent
from sandboxes.tests.conftest import create_agent
from sandboxes.tests.flow import all_lines, deploy_ready, session_done, wait_for
from studio.testing.scripts import slow_script

pytestmark = pytest.mark.django_db(transaction=True)

SLOW_SCRIPT = slow_script()


def execute(api, agent_id, prompt, **extra):
    res = api.post(f"/api/agents/{agent_id}/execute", {"prompt": prompt, **extra}, format="json")
    assert res.status_code == 202, res.content
    return res.json()["session_id"]


def test_cancel_kills_the_run_and_ends_the_session(live_studio, scripted_model, api, local):
    scripted_model.add_script(SLOW_SCRIPT)
    agent_id = create_agent(api)

    def processes() -> str:
        # Seen from the host, by the sandbox's own host uid (every process of the sandbox
        # runs as it): an exec runs in a jail of its own and cannot see the run.
        return "\n".join(" ".join(proc_cmdline(pid)) for pid in processes_of_uid(uid))

    sandbox_id = deploy_ready(api, agent_id)["id"]
    state = Path(settings.SANDBOX_DATA_DIR) / "sandboxes" / sandbox_id / "state.json"
    uid = json.loads(state.read_text())["uid"]
    session_id = execute(api, agent_id, "[[slow]] go")
    wait_for(
        lambda: any(line["kind"] == "tool_use" for line in all_lines(api, session_id)),
        what="the tool call",
    )
    # The slow tool really runs in the sandbox, so the check after cancel can fail.
    wait_for(lambda: "time.sleep" in processes(), timeout=10, what="the slow tool running")
    res = api.post(f"/api/sessions/{session_id}/cancel")
    assert res.status_code == 202
    assert res.json()["status"] == "cancelled", [x["text"] for x in all_lines(api, session_id)]
    wait_for(lambda: "time.sleep" not in processes(), timeout=10, what="the run's processes gone")
    assert session_done(api, session_id)["status"] == "cancelled"
    api.post(f"/api/agents/{agent_id}/stop")


def test_resume_sends_the_earlier_turns_to_the_model(live_studio, scripted_model, api, local):
    agent_id = create_agent(api)
    first = execute(api, agent_id, "remember the word pelican")
    assert session_done(api, first)["status"] == "completed"
    second = execute(api, agent_id, "what was the word?", resume=first)
    done = session_done(api, second)
    assert done["status"] == "completed", done
    last_request = scripted_model.messages_requests()[-1]
    texts = str(last_request["messages"])
    assert "pelican" in texts and "what was the word?" in texts
    api.post(f"/api/agents/{agent_id}/stop")


def test_resume_of_another_agents_session_is_a_404(live_studio, scripted_model, api, local):
    agent_a = create_agent(api, name="a")
    agent_b = create_agent(api, name="b")
    first = execute(api, agent_a, "hello")
    session_done(api, first)
    res = api.post(
        f"/api/agents/{agent_b}/execute", {"prompt": "again", "resume": first}, format="json"
    )
    assert res.status_code == 404
    api.post(f"/api/agents/{agent_a}/stop")


def test_a_sandbox_that_dies_under_a_session_fails_it_and_the_next_execute_redeploys(
    live_studio, scripted_model, api, local
):
    scripted_model.add_script(SLOW_SCRIPT)
    agent_id = create_agent(api)
    first_box = deploy_ready(api, agent_id)
    session_id = execute(api, agent_id, "[[slow]] go")
    wait_for(lambda: all_lines(api, session_id), what="the run to start")
    get_backend("local").kill(first_box["id"])

    assert sandboxes_reconcile()["failed"] == 1
    box = Sandbox.objects.get(pk=first_box["id"])
    assert box.status == "failed"
    assert "disappeared" in box.error
    session = session_done(api, session_id)
    assert session["status"] == "failed"
    assert "sandbox" in session["error"].lower()

    again = execute(api, agent_id, "hello again")
    assert session_done(api, again)["status"] == "completed"
    assert Session.objects.get(pk=again).sandbox_id != box.pk
    api.post(f"/api/agents/{agent_id}/stop")


def test_reconcile_kills_a_sandbox_no_row_owns(live_studio, local, settings):
    backend = get_backend("local")
    orphan = backend.create(
        CreateSpec(
            sandbox_id="0b0e7f0e-0000-4000-8000-000000000001", agent_id="x", runtime_token="t"
        )
    )
    assert orphan.external_id in {s.external_id for s in backend.list()}
    assert sandboxes_reconcile()["killed"] >= 1
    assert orphan.external_id not in {s.external_id for s in backend.list()}


def test_reconcile_leaves_a_sandbox_that_becomes_ready_while_the_provider_is_listed(
    api, local, monkeypatch
):
    agent_id = create_agent(api)
    row = Sandbox.objects.create(agent_id=agent_id, backend="local", status="creating")
    backend = get_backend("local")
    listed = backend.list

    def list_while_provisioning_finishes():
        found = listed()  # the provider as it was before this sandbox existed
        Sandbox.objects.filter(pk=row.pk).update(status="ready")
        return found

    monkeypatch.setattr(backend, "list", list_while_provisioning_finishes)

    assert sandboxes_reconcile() == {"killed": 0, "failed": 0}
    assert Sandbox.objects.get(pk=row.pk).status == "ready"


def test_reconcile_keeps_a_sandbox_whose_row_is_newer_than_its_snapshot(
    live_studio, api, local, monkeypatch
):
    agent_id = create_agent(api)
    backend = get_backend("local")
    listed = backend.list
    made = {}

    def list_after_a_deploy_started():
        row = Sandbox.objects.create(agent_id=agent_id, backend="local", status="creating")
        made["row"] = row
        made["handle"] = backend.create(
            CreateSpec(sandbox_id=str(row.pk), agent_id=agent_id, runtime_token="t")
        )
        return listed()

    monkeypatch.setattr(backend, "list", list_after_a_deploy_started)
    try:
        assert sandboxes_reconcile() == {"killed": 0, "failed": 0}
        assert made["handle"].external_id in {s.external_id for s in listed()}
    finally:
        backend.kill(made["handle"].external_id)


def test_reaper_expires_idle_sandboxes_but_not_busy_ones(live_studio, scripted_model, api, local):
    scripted_model.add_script(SLOW_SCRIPT)
    idle_agent, busy_agent = create_agent(api, name="idle"), create_agent(api, name="busy")
    idle_box = deploy_ready(api, idle_agent)
    busy_box = deploy_ready(api, busy_agent)
    busy_session = execute(api, busy_agent, "[[slow]] go")
    wait_for(lambda: all_lines(api, busy_session), what="the busy run to start")
    Sandbox.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    reaped = sandboxes_reap()
    assert [str(s.pk) for s in reaped] == [idle_box["id"]]
    assert Sandbox.objects.get(pk=idle_box["id"]).status == "expired"
    assert idle_box["id"] not in {s.sandbox_id for s in get_backend("local").list()}
    assert Sandbox.objects.get(pk=busy_box["id"]).status == "ready"

    # Past the hard maximum lifetime even a busy sandbox goes.
    later = timezone.now() + timedelta(seconds=settings_max_lifetime() + 1)
    assert [str(s.pk) for s in sandboxes_reap(now=later)] == [busy_box["id"]]
    assert session_done(api, busy_session)["status"] == "failed"


def settings_max_lifetime() -> int:
    from django.conf import settings

    return settings.SANDBOX_MAX_LIFETIME_SECONDS


def test_a_silent_session_is_diagnosed_with_the_likely_cause(
    live_studio, scripted_model, api, local, settings
):
    agent_id = create_agent(api)
    deploy_ready(api, agent_id)
    settings.BACKEND_API_URL = "http://127.0.0.1:9"  # nothing listens: lines cannot arrive
    session_id = execute(api, agent_id, "hello")
    wait_for(
        lambda: Session.objects.get(pk=session_id).status == "starting", what="the run handed over"
    )
    Session.objects.filter(pk=session_id).update(started_at=timezone.now() - timedelta(minutes=2))
    assert sessions_diagnose_silent() == 1
    session = Session.objects.get(pk=session_id)
    assert session.status == "failed"
    assert "BACKEND_API_URL=http://127.0.0.1:9" in session.error
    lines = session.lines.all()
    assert [line.kind for line in lines] == ["error"]
    api.post(f"/api/agents/{agent_id}/stop")


def test_a_runtime_that_never_answers_fails_the_deploy_with_the_fix(
    live_studio, api, local, settings, monkeypatch, tmp_path
):
    settings.SANDBOX_READY_TIMEOUT_SECONDS = 1
    override_backend("local", LocalBackend(data_dir=tmp_path, runtime_command=["sleep", "60"]))
    try:
        agent_id = create_agent(api)
        api.post(f"/api/agents/{agent_id}/deploy")
        box = wait_for(
            lambda: Sandbox.objects.filter(agent_id=agent_id, status="failed").first(),
            what="the deploy to fail",
        )
        assert "Timeout waiting for port 8080" in box.error
        assert get_backend("local").list() == []
        shown = api.get(f"/api/agents/{agent_id}/sandbox")
        # A client polling after deploy sees the failed deployment and why.
        assert shown.status_code == 200
        assert shown.json()["deployment"]["status"] == "failed"
        assert "Timeout waiting for port 8080" in shown.json()["deployment"]["error"]
    finally:
        override_backend("local", None)


def test_the_live_sandbox_cap_per_user_is_a_429(live_studio, api, local, settings):
    settings.SANDBOX_MAX_LIVE_PER_USER = 1
    first, second = create_agent(api, name="one"), create_agent(api, name="two")
    deploy_ready(api, first)
    res = api.post(f"/api/agents/{second}/deploy")
    assert res.status_code == 429
    assert "limit is 1" in res.json()["message"]
    api.post(f"/api/agents/{first}/stop")
    assert api.post(f"/api/agents/{second}/deploy").status_code == 202
    deploy_ready(api, second)
    api.post(f"/api/agents/{second}/stop")


def test_packages_install_into_the_sandbox_and_bad_names_are_refused(live_studio, api, local):
    agent_id = create_agent(api)
    deploy_ready(api, agent_id)
    url = f"/api/agents/{agent_id}/sandbox/packages"
    for bad in (["six; rm -rf /"], ["$(id)"], ["six && true"], ["-e ."], [""]):
        res = api.post(url, {"packages": bad}, format="json")
        assert res.status_code == 400, bad
        assert res.json()["error"] == "ValidationError"
    res = api.post(url, {"packages": ["six==1.17.0"], "manager": "pip"}, format="json")
    assert res.status_code == 200, res.content
    assert res.json()["exit_code"] == 0, res.json()
    check = api.post(
        f"/api/agents/{agent_id}/sandbox/exec",
        {"command": "python3 -c 'import six; print(six.__version__)'"},
        format="json",
    )
    assert check.json()["stdout"].strip() == "1.17.0"
    api.post(f"/api/agents/{agent_id}/stop")


def test_exec_timeouts_are_bounded_and_long_output_is_truncated(live_studio, api, local):
    agent_id = create_agent(api)
    deploy_ready(api, agent_id)
    url = f"/api/agents/{agent_id}/sandbox/exec"
    assert api.post(url, {"command": "true", "timeout": 10**9}, format="json").status_code == 400
    slow = api.post(url, {"command": "sleep 5", "timeout": 300}, format="json").json()
    assert slow["timed_out"] is True
    big = api.post(url, {"command": "head -c 600000 /dev/zero | tr '\\\\0' x"}, format="json")
    assert "[output truncated" in big.json()["stdout"]
    assert len(big.json()["stdout"]) < 300_000
    api.post(f"/api/agents/{agent_id}/stop")


@pytest.mark.slow
def test_fifty_deploy_stop_cycles_leave_no_process_and_no_live_row(live_studio, api, local):
    from sandboxes.backends.local_jail import find_processes

    agent_id = create_agent(api, skills=[])
    ids = []
    for _ in range(50):
        ids.append(deploy_ready(api, agent_id)["id"])
        assert api.post(f"/api/agents/{agent_id}/stop").json()["deployment"]["status"] == "stopped"
    assert len(set(ids)) == 50
    assert not Sandbox.objects.filter(status__in=["pending", "creating", "ready", "stopping"])
    assert get_backend("local").list() == []
    leftovers = [pid for sid in ids for pid in find_processes(arg=sid, env_marker=sid)]
    assert leftovers == []


def test_deleting_an_agent_kills_its_sandbox(live_studio, api, local):
    agent_id = create_agent(api)
    box = deploy_ready(api, agent_id)
    assert api.delete(f"/api/agents/{agent_id}/").status_code == 204
    assert box["id"] not in {s.sandbox_id for s in get_backend("local").list()}
    assert not Sandbox.objects.filter(pk=box["id"]).exists()
