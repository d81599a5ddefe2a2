"""Runs that end badly, sandboxes that die or expire, and the studio cleaning up after them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Session
from sandboxes.backends import get_backend, override_backend
from sandboxes.backends.base import CreateSpec
from sandboxes.backends.local import LocalBackend
from sandboxes.models import Sandbox
from sandboxes.services import deploy as deploy_service
from sandboxes.services.lifecycle import sandboxes_reap, sandboxes_reconcile
from sandboxes.services.sessions import sessions_diagnose_silent
from sandboxes.tests.conftest import create_agent
from sandboxes.tests.flow import all_lines, deploy_ready, session_done, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

SLOW_SCRIPT = {
    "marker": "[[slow]]",
    "turns": [
        [{"type": "tool_use", "name": "Bash", "input": {"command": "sleep 30; echo late"}}],
        [{"type": "text", "text": "done"}],
    ],
}


def execute(api, agent_id, prompt, **extra):
    res = api.post(f"/api/agents/{agent_id}/execute", {"prompt": prompt, **extra}, format="json")
    assert res.status_code == 202, res.content
    return res.json()["session_id"]


def test_cancel_kills_the_run_and_ends_the_session(live_studio, scripted_model, api, local):
    scripted_model.add_script(SLOW_SCRIPT)
    agent_id = create_agent(api)
    deploy_ready(api, agent_id)
    session_id = execute(api, agent_id, "[[slow]] go")
    wait_for(
        lambda: any(line["kind"] == "tool_use" for line in all_lines(api, session_id)),
        what="the tool call",
    )
    res = api.post(f"/api/sessions/{session_id}/cancel")
    assert res.status_code == 202
    assert res.json()["status"] == "cancelled"
    ps = api.post(f"/api/agents/{agent_id}/sandbox/exec", {"command": "ps -eo args"}, format="json")
    wait_for(
        lambda: (
            "sleep 30"
            not in api.post(
                f"/api/agents/{agent_id}/sandbox/exec", {"command": "ps -eo args"}, format="json"
            ).json()["stdout"]
        ),
        timeout=10,
        what="the run's processes to be gone",
    )
    assert ps.status_code == 200
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
    monkeypatch.setattr(deploy_service, "HEALTH_TIMEOUT_SECONDS", 1)
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
        assert shown.status_code == 404
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
