"""A real run whose prompt, request env and tool output hold secrets leaves none of them
anywhere a person or a program can read: the database (every column of every table), the
API, the admin (every model's list and every row's page), the web pages, the studio's logs.

The secrets: an agent secret, a request env value, the studio's model credential
(ANTHROPIC_API_KEY), and an Anthropic-shaped and a GitHub-shaped token that a Bash tool echoes
(the scripted model asks for the tool; the real SDK and CLI run it in a bubblewrap sandbox).
The prompt names the first two values too: a secret is masked wherever it was typed.
"""

from __future__ import annotations

import json
import logging

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from sandboxes.tests.conftest import create_agent
from sandboxes.tests.flow import all_lines, deploy_ready, session_done

pytestmark = pytest.mark.django_db(transaction=True)

AGENT_SECRET = "agent-secret-value-Q7x9w2"
REQUEST_ENV = "request-env-value-K3m8p4"
MODEL_KEY = "sk-ant-studio-credential-Zr5TnYh2Lq8vW"
SHAPED_ANTHROPIC = "sk-ant-api03-leakedLEAKEDleaked0123456789"
SHAPED_GITHUB = "ghp_" + "L3akedGithubToken0123456789abcdefghij"
SECRETS = [AGENT_SECRET, REQUEST_ENV, MODEL_KEY, SHAPED_ANTHROPIC, SHAPED_GITHUB]

LEAK_SCRIPT = {
    "marker": "[[leak]]",
    "turns": [
        [
            {"type": "text", "text": f"Printing everything, including {SHAPED_GITHUB}."},
            {
                "type": "tool_use",
                "name": "Bash",
                "input": {
                    "command": 'echo "$DEPLOY_TOKEN $REQUEST_TOKEN $ANTHROPIC_API_KEY '
                    f'{SHAPED_ANTHROPIC}"; echo {SHAPED_GITHUB} >&2; env | sort'
                },
            },
        ],
        [{"type": "text", "text": f"Done: {AGENT_SECRET} {REQUEST_ENV}"}],
    ],
}


class Capture(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.NOTSET)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))  # the message, args and any traceback


@pytest.fixture
def studio_logs():
    """Everything the studio logs (at its configured levels) while the test runs."""
    handler = Capture()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


def leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def test_no_secret_is_stored_shown_or_logged(
    live_studio, scripted_model, api, user, settings, monkeypatch, studio_logs, django_user_model
):
    settings.SANDBOX_BACKEND = "local"
    monkeypatch.setenv("ANTHROPIC_API_KEY", MODEL_KEY)
    scripted_model.add_script(LEAK_SCRIPT)
    agent_id = create_agent(api, skills=[], secrets={"DEPLOY_TOKEN": AGENT_SECRET})
    deploy_ready(api, agent_id)
    res = api.post(
        f"/api/agents/{agent_id}/execute",
        {
            "prompt": f"[[leak]] use {AGENT_SECRET} and {REQUEST_ENV} and {SHAPED_GITHUB}",
            "env": {"REQUEST_TOKEN": REQUEST_ENV},
        },
        format="json",
    )
    assert res.status_code == 202, res.content
    session_id = res.json()["session_id"]
    assert session_done(api, session_id)["status"] == "completed"

    # The run really handled the secrets: the tool printed them (masked) and the sandbox had
    # them in its environment. Without this the scan below could pass on a run that did nothing.
    lines = all_lines(api, session_id)
    results = [x for x in lines if x["kind"] == "tool_result"]
    assert "⎿  *** *** " in "".join(x["text"] for x in results)  # the echo, masked
    tool_output = json.dumps([x["data"] for x in results])  # the whole output
    for name in ("DEPLOY_TOKEN", "REQUEST_TOKEN"):
        assert f"{name}=***" in tool_output, name
    # The run's ANTHROPIC_API_KEY is the model gateway's per-session credential: the
    # studio's own key never entered the sandbox (docs/gateway.md).
    assert "ANTHROPIC_API_KEY=" in tool_output and MODEL_KEY not in tool_output

    found: dict[str, list[str]] = {}

    def scan(where: str, text: str) -> None:
        if hit := leaks(text):
            found[where] = hit

    # The database: every column of every row of every model.
    for model in apps.get_models():
        for row in model.objects.values():
            scan(f"db {model._meta.label}", json.dumps(row, default=str))

    # The API, as the owner sees it.
    for url in [
        "/api/agents/",
        f"/api/agents/{agent_id}/",
        f"/api/agents/{agent_id}/sandbox",
        f"/api/agents/{agent_id}/logs?limit=1000",
        "/api/sessions/",
        f"/api/sessions/{session_id}/",
        f"/api/sessions/{session_id}/logs?limit=5000",
        "/api/usage/",
    ]:
        res = api.get(url)
        assert res.status_code == 200, url
        scan(f"api {url}", res.content.decode())

    # The web pages.
    web = Client()
    web.force_login(user)
    for url in [
        "/",
        f"/agents/{agent_id}/",
        f"/agents/{agent_id}/edit/",
        f"/sessions/{session_id}/",
    ]:
        res = web.get(url)
        assert res.status_code == 200, url
        scan(f"page {url}", res.content.decode())

    # The admin: every model's list, search and every row's change page.
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw-admin-1")
    operator = Client()
    operator.force_login(root)
    pages = 0
    for model in filter(admin.site.is_registered, apps.get_models()):
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        for url in [reverse(f"{name}_changelist"), reverse(f"{name}_changelist") + "?q=a"]:
            res = operator.get(url)
            assert res.status_code == 200, url
            scan(f"admin {url}", res.content.decode())
        for pk in [obj.pk for obj in model.objects.all()[:200]]:  # TokenProxy: pk is the user
            url = reverse(f"{name}_change", args=[pk])
            res = operator.get(url)
            assert res.status_code == 200, url
            scan(f"admin {url}", res.content.decode())
            pages += 1
    assert pages > 10

    # The studio's logs, from deploy to here.
    assert studio_logs.lines, "nothing was logged: the capture is not working"
    scan("logs", "\n".join(studio_logs.lines))

    api.post(f"/api/agents/{agent_id}/stop")
    assert found == {}, f"secret values found in: {found}"
