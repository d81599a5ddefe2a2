"""The seed guide's four troubleshooting entries, each provoked for real on the local backend
and on the E2B double: the message naming the cause and the fix shows in the API answer,
the run's log and the agent page."""

from __future__ import annotations

import contextlib
import html
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from agents.models import Session
from sandboxes.backends import override_backend
from sandboxes.backends.local import LocalBackend
from sandboxes.models import Sandbox
from sandboxes.runtime_client import RuntimeClient, RuntimeUnavailable
from sandboxes.services.sessions import sessions_diagnose_silent
from sandboxes.tests.conftest import create_agent, host_ca_env
from sandboxes.tests.flow import all_lines, deploy_ready, session_done, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

GUIDE_SKILL = Path(django_settings.BASE_DIR, "agents", "web", "examples", "web-scraping.md")


def guide_skill() -> dict:
    front, body = re.match(r"^---\n(.*?)\n---\n+(.*)$", GUIDE_SKILL.read_text(), re.S).groups()
    meta = dict(line.split(": ", 1) for line in front.splitlines())
    return {"name": meta["name"], "description": meta["description"].strip('"'), "body": body}


def failed_deploy(api, agent_id) -> dict:
    api.post(f"/api/agents/{agent_id}/deploy")
    wait_for(
        lambda: Sandbox.objects.filter(agent_id=agent_id, status="failed").exists(),
        timeout=60,
        what="the deploy to fail",
    )
    res = api.get(f"/api/agents/{agent_id}/sandbox")
    assert res.status_code == 200, res.content
    return res.json()["deployment"]


def run(api, agent_id, prompt="hello") -> dict:
    res = api.post(f"/api/agents/{agent_id}/execute", {"prompt": prompt}, format="json")
    assert res.status_code == 202, res.content
    return session_done(api, res.json()["session_id"], timeout=90)


def log_text(api, session_id) -> str:
    return "\n".join(line["text"] for line in all_lines(api, session_id))


def page(web_client, agent_id) -> str:
    return html.unescape(web_client.get(f"/agents/{agent_id}/").content.decode())


@pytest.fixture
def web_client(client, user):
    client.force_login(user)
    return client


def shows_everywhere(api, web_client, agent_id, *phrases, session=None) -> None:
    """Each phrase is in the deployment or session answer, the run's log and the page."""
    answer = session["error"] if session else api.get(f"/api/agents/{agent_id}/sandbox").json()
    answer = answer if isinstance(answer, str) else answer["deployment"]["error"]
    if session is None:
        session = run(api, agent_id)  # a run that waited for this deployment
        assert session["status"] == "failed", session
    text, shown = log_text(api, session["id"]), page(web_client, agent_id)
    for phrase in phrases:
        assert phrase in answer, (phrase, answer)
        assert phrase in text, (phrase, text)
        assert phrase in shown, phrase


# --- No template found ------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["e2b"], indirect=True)
def test_no_template_found_names_the_variable_and_the_command(
    live_studio, scripted_model, api, web_client, settings, backend
):
    settings.E2B_TEMPLATE_ID = "no-such-template"
    agent_id = create_agent(api)
    deployment = failed_deploy(api, agent_id)
    assert deployment["error"].startswith("No template found")
    shows_everywhere(
        api, web_client, agent_id,
        "No template found", "'no-such-template'", "E2B_TEMPLATE_ID",
        "python manage.py build_template",
    )  # fmt: skip

    # A per-agent template override is named as the culprit instead.
    other = create_agent(api, name="other", template="my-own")
    deployment = failed_deploy(api, other)
    assert "this agent's `template` field" in deployment["error"]
    assert "python manage.py build_template" in deployment["error"]


def test_locally_a_runtime_that_cannot_start_names_the_start_command_and_the_cause(
    live_studio, scripted_model, api, web_client, local, settings, tmp_path
):
    # The local counterpart of a missing template: what the runtime needs is not there (here
    # its package). The deploy fails at once, without waiting out the ready timeout.
    command = ["{python}", "-m", "agent_runtime_gone", "serve", "--port", "{port}"]
    override_backend("local", LocalBackend(data_dir=tmp_path, runtime_command=command))
    try:
        agent_id = create_agent(api)
        deployment = failed_deploy(api, agent_id)
        assert "exited before it listened" in deployment["error"]
        shows_everywhere(
            api, web_client, agent_id,
            "Timeout waiting for port 8080", "No module named 'agent_runtime_gone'",
            "python -m agent_runtime serve --port 8080",
        )  # fmt: skip
    finally:
        override_backend("local", None)


# --- Timeout waiting for port 8080 ------------------------------------------------------


def test_timeout_waiting_for_port_8080_says_what_to_look_at(
    live_studio, scripted_model, api, web_client, backend, settings, tmp_path
):
    settings.SANDBOX_READY_TIMEOUT_SECONDS = 1
    if backend == "e2b":
        settings.E2B_TEMPLATE_ID = "bare"  # a template whose start command runs nothing
        where = "/home/user/.agent_runtime/runtime.log"
    else:
        override_backend("local", LocalBackend(data_dir=tmp_path, runtime_command=["sleep", "60"]))
        where = "runtime.log in the sandbox's directory under STUDIO_DATA_DIR"
    try:
        agent_id = create_agent(api)
        deployment = failed_deploy(api, agent_id)
        shows_everywhere(
            api, web_client, agent_id,
            "Timeout waiting for port 8080", "never answered in 1 s", "start command",
            "python -m agent_runtime serve --port 8080", where,
            "SANDBOX_READY_TIMEOUT_SECONDS",
        )  # fmt: skip
        if backend == "e2b":
            assert "python manage.py build_template" in deployment["error"]
    finally:
        override_backend("local", None)


# --- Agent not writing output -----------------------------------------------------------


def test_agent_not_writing_output_names_the_address_and_whether_the_sandbox_reaches_it(
    live_studio, scripted_model, api, web_client, backend, settings
):
    agent_id = create_agent(api)
    deploy_ready(api, agent_id, timeout=60)
    settings.BACKEND_API_URL = "http://127.0.0.1:9"  # nothing listens there
    res = api.post(f"/api/agents/{agent_id}/execute", {"prompt": "hello"}, format="json")
    session_id = res.json()["session_id"]
    wait_for(
        lambda: Session.objects.get(pk=session_id).status in ("starting", "running"),
        what="the run handed over",
    )
    Session.objects.filter(pk=session_id).update(started_at=timezone.now() - timedelta(minutes=2))
    assert sessions_diagnose_silent() == 1
    session = api.get(f"/api/sessions/{session_id}/").json()
    assert session["status"] == "failed"
    shows_everywhere(
        api, web_client, agent_id,
        "Agent not writing output", "BACKEND_API_URL=http://127.0.0.1:9",
        "the sandbox posts to http://127.0.0.1:9/api/internal/logs/append",
        "the sandbox cannot reach the studio", "Connection refused",
        "Set BACKEND_API_URL to an address the sandbox can reach",
        session=session,
    )  # fmt: skip
    api.post(f"/api/agents/{agent_id}/stop")


# --- Browser automation not working ------------------------------------------------------


def test_browser_automation_not_working_says_what_is_missing_and_how_to_add_it(
    live_studio, scripted_model, api, web_client, backend
):
    agent_id = create_agent(api, skills=[guide_skill()], env=host_ca_env())
    deploy_ready(api, agent_id, timeout=60)
    session = run(api, agent_id)
    assert session["status"] == "completed", session  # the run itself goes on
    shows_everywhere(
        api, web_client, agent_id,
        "Browser automation not working",
        "the Node package `playwright` is not installed",
        f'POST /api/agents/{agent_id}/sandbox/packages {{"packages": ["playwright"]}}',
        session=session,
    )  # fmt: skip

    # With the package installed as the notice says, the next missing piece is named.
    res = api.post(
        f"/api/agents/{agent_id}/sandbox/packages", {"packages": ["playwright"]}, format="json"
    )
    assert res.json()["exit_code"] == 0, res.json()
    session = run(api, agent_id)
    shows_everywhere(
        api, web_client, agent_id,
        "Browser automation not working", "Playwright's Chromium is not installed",
        "npx playwright install chromium",
        session=session,
    )  # fmt: skip
    api.post(f"/api/agents/{agent_id}/stop")


def test_an_agent_without_a_browser_skill_is_not_probed(live_studio, scripted_model, api, local):
    agent_id = create_agent(api)
    deploy_ready(api, agent_id)
    session = run(api, agent_id)
    assert session["status"] == "completed" and session["error"] == ""
    assert "Browser automation" not in log_text(api, session["id"])
    api.post(f"/api/agents/{agent_id}/stop")


def test_a_python_browser_skill_is_checked_with_pythons_playwright(
    live_studio, scripted_model, api, web_client, local
):
    # The runtime's own example skill uses Playwright for Python. The studio's venv (which
    # local sandboxes run) has the package; a fresh sandbox HOME has no browser.
    text = Path(django_settings.BASE_DIR, "agent_runtime", "skills", "web-scraping", "SKILL.md")
    front, body = re.match(r"^---\n(.*?)\n---\n+(.*)$", text.read_text(), re.S).groups()
    meta = dict(line.split(": ", 1) for line in front.splitlines())
    skill = {"name": "py-scraping", "description": meta["description"], "body": body}
    agent_id = create_agent(api, skills=[skill])
    deploy_ready(api, agent_id)
    session = run(api, agent_id)
    shows_everywhere(
        api, web_client, agent_id,
        "Browser automation not working", "Playwright's Chromium is not installed",
        "/home/agent/.cache/ms-playwright/",
        session=session,
    )  # fmt: skip
    api.post(f"/api/agents/{agent_id}/stop")


def test_the_address_shown_never_carries_credentials():
    from sandboxes.services.troubleshoot import _shown

    assert (
        _shown("https://bot:s3cret@studio.example.com:8443/x")
        == "https://studio.example.com:8443/x"
    )
    assert _shown("http://127.0.0.1:9") == "http://127.0.0.1:9"


def test_a_silent_run_whose_runtime_is_gone_says_so(
    live_studio, scripted_model, api, local, settings
):
    from sandboxes.backends import get_backend

    agent_id = create_agent(api)
    box = deploy_ready(api, agent_id)
    settings.BACKEND_API_URL = "http://127.0.0.1:9"  # so that no line arrives meanwhile
    res = api.post(f"/api/agents/{agent_id}/execute", {"prompt": "hello"}, format="json")
    session_id = res.json()["session_id"]
    client = RuntimeClient(Sandbox.objects.get(pk=box["id"]))

    def accepted():
        with contextlib.suppress(RuntimeUnavailable):
            return client.health()["busy"]  # the runtime holds a run: this one

    wait_for(accepted, what="the runtime to accept the run")
    Session.objects.filter(pk=session_id).update(started_at=timezone.now() - timedelta(minutes=2))
    get_backend("local").kill(box["external_id"])  # the runtime dies under the run
    found = Session.objects.get(pk=session_id)
    assert sessions_diagnose_silent() == 1, (found.status, found.last_seq, found.error)
    error = Session.objects.get(pk=session_id).error
    assert error.startswith("Agent not writing output"), error
    assert "runtime is not answering" in error and "Deploy again" in error
