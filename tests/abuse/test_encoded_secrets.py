"""Encoded copies of a secret do not come back: not through the logs, exec, packages, files read
back (text, binary, directory names), the stored prompt, nor error messages.

A real run (the real SDK and CLI against the scripted model, in a bubblewrap sandbox) has its
Bash tool print the agent secret, the request env value, the model key and the session's own
ingest token (read from the runtime's state on disk) as base64 (padded, bare, inside longer
streams at each byte alignment, wrapped), base64url, hex (od, both cases), URL-encoded,
reversed and folded, and leave them in files. The forms are computed here, independently of
logs/redaction.py, and looked for in everything the studio answers, with and without
whitespace.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse

import pytest

from agents.models import Secret
from sandboxes.backends import override_backend
from sandboxes.backends.base import BackendError, ExecResult
from sandboxes.models import Sandbox
from sandboxes.tests.conftest import create_agent
from sandboxes.tests.flow import all_lines, deploy_ready, session_done
from studio.tokens import runtime_token, session_token

AGENT_SECRET = "agent-secret-value-Q7x9w2"
REQUEST_ENV = "request-env-value-K3m8p4"
MODEL_KEY = "model-credential-Zr5TnYh2Lq8vW"  # not token-shaped: only its value masks it

ENCODE_ALL = r"""
T=$(cat ~/.agent_runtime/sessions/*/ingest.json | python3 -c \
  'import json,sys; print(json.load(sys.stdin)["token"])')
for v in "$DEPLOY_TOKEN" "$REQUEST_TOKEN" "$ANTHROPIC_API_KEY" "$T"; do
  printf %s "$v" | base64
  printf %s "$v" | base64 | tr -d =
  printf x%s "$v" | base64; printf xy%s "$v" | base64; printf xyz%s "$v" | base64
  printf %s "$v" | base64 -w 7
  python3 -c 'import base64,sys; print(base64.urlsafe_b64encode(b"\xff"+sys.argv[1].encode()))' "$v"
  printf %s "$v" | od -An -tx1
  printf %s "$v" | od -An -tx1 | tr a-f A-F
  python3 -c 'import urllib.parse,sys; print(urllib.parse.quote("k=" + sys.argv[1], safe=""))' "$v"
  printf %s "$v" | rev; echo
  printf %s "$v" | fold -w 5; echo
done | tee /workspace/encoded.txt
printf '\0\377%s\200' "$DEPLOY_TOKEN" > /workspace/blob.bin
touch "/workspace/name-$DEPLOY_TOKEN"
"""

SCRIPT = {
    "marker": "[[encode]]",
    "turns": [
        [{"type": "tool_use", "name": "Bash", "input": {"command": ENCODE_ALL}}],
        [{"type": "text", "text": "Encoded."}],
    ],
}


def forms(secret: str) -> set[str]:
    """What an encoded copy of ``secret`` looks like, computed without the studio's code."""
    raw = secret.encode()
    std = base64.b64encode(raw).decode()
    found = {secret, secret[::-1], std.rstrip("="), raw.hex(), raw.hex().upper()}
    found.add(urllib.parse.quote(secret, safe=""))
    for prefix in (b"x", b"xy", b"xyz", b"\xff"):
        stream = base64.b64encode(prefix + raw).decode()
        # the characters only the secret's bytes decide: skip the prefix's, and the last two
        start = -(-len(prefix) * 8 // 6)
        found.add(stream[start : (len(prefix) + len(raw)) * 8 // 6])
        found.add(found_url := stream[start : (len(prefix) + len(raw)) * 8 // 6])
        found.add(found_url.replace("+", "-").replace("/", "_"))
    return found


def leaks(text: str, secrets: list[str]) -> list[str]:
    squeezed = re.sub(r"\s+", "", text)
    return sorted(
        f"{secret[:6]}…: {form[:12]}…"
        for secret in secrets
        for form in forms(secret)
        if form in text or form in squeezed
    )


def strings(value) -> str:
    """Every string in a JSON value, one per line (so JSON escaping hides nothing)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\n".join(strings(k) + "\n" + strings(v) for k, v in value.items())
    if isinstance(value, list):
        return "\n".join(strings(v) for v in value)
    return ""


@pytest.mark.django_db(transaction=True)
def test_encoded_secrets_do_not_come_back_from_logs_exec_or_files(
    live_studio, scripted_model, api, settings, monkeypatch
):
    settings.SANDBOX_BACKEND = "local"
    monkeypatch.setenv("ANTHROPIC_API_KEY", MODEL_KEY)
    scripted_model.add_script(SCRIPT)
    agent_id = create_agent(api, skills=[], secrets={"DEPLOY_TOKEN": AGENT_SECRET})
    sandbox_id = deploy_ready(api, agent_id)["id"]
    typed = base64.b64encode(AGENT_SECRET.encode()).decode()
    res = api.post(
        f"/api/agents/{agent_id}/execute",
        {"prompt": f"[[encode]] with {typed}", "env": {"REQUEST_TOKEN": REQUEST_ENV}},
        format="json",
    )
    assert res.status_code == 202, res.content
    session_id = res.json()["session_id"]
    assert session_done(api, session_id)["status"] == "completed"
    secrets = [
        AGENT_SECRET,
        REQUEST_ENV,
        MODEL_KEY,
        session_token(session_id),
        runtime_token(sandbox_id),
    ]

    answers: dict[str, str] = {}
    lines = all_lines(api, session_id)
    answers["logs"] = strings(lines)
    tool_output = strings([x["data"] for x in lines if x["kind"] == "tool_result"])
    assert tool_output.count("***") >= 40, tool_output  # the run printed them all, masked
    answers["session"] = strings(api.get(f"/api/sessions/{session_id}/").json())
    files = f"/api/agents/{agent_id}/sandbox/files"
    text = api.get(files, {"path": "/workspace/encoded.txt"}).json()
    assert text["encoding"] == "utf-8" and text["content"].count("***") >= 40, text
    answers["file"] = text["content"]
    blob = api.get(files, {"path": "/workspace/blob.bin"}).json()
    assert blob["encoding"] == "base64", blob
    content = base64.b64decode(blob["content"])
    assert content.startswith(b"\0\xff") and content.endswith(b"\x80"), content
    answers["binary"] = content.decode("latin-1")
    answers["listing"] = strings(api.get(files, {"path": "/workspace"}).json())
    exec_url = f"/api/agents/{agent_id}/sandbox/exec"
    command = "cat encoded.txt; cat blob.bin; ls; cat ~/.agent_runtime/sessions/*/ingest.json"
    res = api.post(exec_url, {"command": command}, format="json")
    assert res.status_code == 200, res.content
    answers["exec"] = strings(res.json())

    found = {where: hit for where, text in answers.items() if (hit := leaks(text, secrets))}
    api.post(f"/api/agents/{agent_id}/stop")
    assert found == {}, found


class LeakyBackend:
    """A provider whose output and errors quote the sandbox's secrets (the boundary the
    studio redacts at: what a backend returns)."""

    def __init__(self, output: str):
        self.output = output

    def exec(self, external_id, command, *, timeout, cwd):
        if "boom" in command:
            raise BackendError(f"the provider failed: {self.output}")
        return ExecResult(stdout=self.output, stderr=self.output[::-1], exit_code=1)


@pytest.fixture
def leaky(api, agent):
    secret = Secret(agent=agent, name="DEPLOY_TOKEN")
    secret.set_value(AGENT_SECRET)
    secret.save()
    Sandbox.objects.create(agent=agent, backend="local", external_id="leaky", status="ready")
    raw = AGENT_SECRET.encode()
    output = "\n".join(
        [base64.b64encode(raw).decode(), raw.hex(), urllib.parse.quote(AGENT_SECRET)]
    )
    override_backend("local", LeakyBackend(output))
    yield agent
    override_backend("local", None)


@pytest.mark.django_db
def test_packages_output_and_backend_errors_are_redacted(api, leaky):
    res = api.post(
        f"/api/agents/{leaky.pk}/sandbox/packages",
        {"packages": ["left-pad"], "manager": "npm"},
        format="json",
    )
    assert res.status_code == 200, res.content
    assert leaks(json.dumps(res.json()), [AGENT_SECRET]) == [], res.json()
    assert res.json()["stdout"].count("***") == 3
    res = api.post(f"/api/agents/{leaky.pk}/sandbox/exec", {"command": "boom"}, format="json")
    assert res.status_code == 502, res.content
    assert leaks(strings(res.json()), [AGENT_SECRET]) == [], res.json()
    assert "***" in res.json()["message"]
