"""Deploy, act, run a prompt and stop through the API: on the local (bubblewrap) backend, and
on the E2B backend through the real e2b SDK against the local E2B double."""

from __future__ import annotations

import base64
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import client_for
from sandboxes.backends import get_backend
from sandboxes.models import Sandbox
from sandboxes.tests.flow import all_lines, deploy_ready, session_done, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

BASH_SCRIPT = {
    "marker": "[[write-file]]",
    "turns": [
        [
            {"type": "text", "text": "I'll write the file."},
            {
                "type": "tool_use",
                "name": "Bash",
                "input": {"command": "echo hello from the agent > made.txt && cat made.txt"},
            },
        ],
        [{"type": "text", "text": "The file is written."}],
    ],
}


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if text.encode() in fh.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


def test_deploy_exec_files_prompt_stop(live_studio, scripted_model, api, backend, agent_id):
    scripted_model.add_script(BASH_SCRIPT)
    deployment = deploy_ready(api, agent_id)
    assert deployment["backend"] == backend

    # A non-root user, and the host's files are not there.
    from django.conf import settings

    host_files = [str(settings.BASE_DIR / "manage.py"), str(settings.DATA_DIR), "/root/.bashrc"]
    res = api.post(
        f"/api/agents/{agent_id}/sandbox/exec",
        {"command": "id -u; for f in " + " ".join(host_files) + "; do test -e $f && echo $f; done"},
        format="json",
    )
    assert res.status_code == 200, res.content
    uid, *visible = res.json()["stdout"].splitlines()
    assert uid == "1000"
    if backend == "local":  # the double stands in for a VM on this host: only its uid counts
        assert visible == [], visible

    # The skill was deployed with front matter.
    skill = api.get(f"/api/agents/{agent_id}/sandbox/files?path=.claude/skills/greet/SKILL.md")
    assert skill.json()["content"].startswith('---\nname: greet\ndescription: "Say hi: politely"')

    # Files round-trip, text and binary.
    blob = bytes(range(256))
    res = api.post(
        f"/api/agents/{agent_id}/sandbox/files",
        {
            "files": [
                {"path": "notes/a.txt", "content": "alpha"},
                {
                    "path": "/workspace/b.bin",
                    "content": base64.b64encode(blob).decode(),
                    "encoding": "base64",
                },
            ]
        },
        format="json",
    )
    assert res.json() == {"written": ["/workspace/notes/a.txt", "/workspace/b.bin"]}
    assert (
        api.get(f"/api/agents/{agent_id}/sandbox/files?path=notes/a.txt").json()["content"]
        == "alpha"
    )
    binary = api.get(f"/api/agents/{agent_id}/sandbox/files?path=b.bin").json()
    assert binary["encoding"] == "base64" and base64.b64decode(binary["content"]) == blob
    listing = api.get(f"/api/agents/{agent_id}/sandbox/files").json()
    assert {"notes", "b.bin"} <= {e["name"] for e in listing["entries"]}

    # Traversal and symlinks out are refused.
    for bad in ("../etc/passwd", "/etc/passwd", "notes/../../x"):
        res = api.get(f"/api/agents/{agent_id}/sandbox/files", {"path": bad})
        assert res.status_code == 400, bad
    api.post(
        f"/api/agents/{agent_id}/sandbox/exec", {"command": "ln -s /etc/passwd out"}, format="json"
    )
    assert api.get(f"/api/agents/{agent_id}/sandbox/files?path=out").status_code == 400

    # A prompt runs to completion and its tool call did real work in the sandbox.
    res = api.post(
        f"/api/agents/{agent_id}/execute", {"prompt": "[[write-file]] please"}, format="json"
    )
    assert res.status_code == 202, res.content
    session_id = res.json()["session_id"]
    session = session_done(api, session_id)
    assert session["status"] == "completed", session
    assert session["claude_session_id"]
    lines = all_lines(api, session_id)
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    kinds = [line["kind"] for line in lines]
    assert "tool_use" in kinds and "tool_result" in kinds and kinds[-1] == "result"
    assert any("hello from the agent" in line["text"] for line in lines)
    made = api.get(f"/api/agents/{agent_id}/sandbox/files?path=made.txt").json()
    assert made["content"] == "hello from the agent\n"

    # Stop: the row is stopped and nothing of the sandbox is left running.
    sandbox_id = deployment["id"]
    res = api.post(f"/api/agents/{agent_id}/stop", {}, format="json")
    assert res.status_code == 202
    assert res.json()["deployment"]["status"] == "stopped"
    assert not [s for s in get_backend(backend).list() if s.sandbox_id == sandbox_id]
    wait_for(lambda: not _processes_mentioning(sandbox_id), timeout=5, what="no process left")


def test_simultaneous_deploys_make_one_sandbox(live_studio, api, agent_id):
    token = api._credentials["HTTP_AUTHORIZATION"]

    def deploy(_):
        from rest_framework.test import APIClient

        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=token)
        return client.post(f"/api/agents/{agent_id}/deploy", {}, format="json")

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(deploy, range(10)))
    assert {a.status_code for a in answers} == {202}
    assert len({a.json()["deployment"]["id"] for a in answers}) == 1
    deploy_ready(api, agent_id)
    assert Sandbox.objects.filter(agent_id=agent_id).count() == 1
    api.post(f"/api/agents/{agent_id}/stop", {}, format="json")


def test_another_users_sandbox_routes_are_404(live_studio, api, other_user, agent_id):
    other = client_for(other_user)
    for method, path in [
        ("post", "deploy"),
        ("get", "sandbox"),
        ("post", "stop"),
        ("post", "execute"),
        ("get", "sandbox/files"),
        ("post", "sandbox/files"),
        ("post", "sandbox/exec"),
        ("post", "sandbox/packages"),
    ]:
        res = getattr(other, method)(f"/api/agents/{agent_id}/{path}", {}, format="json")
        assert res.status_code == 404, (method, path, res.content)
    assert not Sandbox.objects.exists()


def test_execute_without_model_credentials_is_a_409_naming_the_variable(
    live_studio, api, agent_id, monkeypatch
):
    for name in ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    res = api.post(f"/api/agents/{agent_id}/execute", {"prompt": "hi"}, format="json")
    assert res.status_code == 409
    assert "ANTHROPIC_API_KEY" in res.json()["message"]
    assert not Sandbox.objects.exists()
