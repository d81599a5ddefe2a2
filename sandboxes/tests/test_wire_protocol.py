"""The studio's side of the execute contract (agent_runtime/protocol.py): the body it builds
is the one the real runtime accepts, and a runtime of another protocol version is refused."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from agent_runtime import protocol
from agent_runtime.state import SessionDir
from agent_runtime.tests.helpers import RuntimeProcess, wait_for


@pytest.mark.django_db
def test_the_runtime_accepts_the_execute_body_the_studio_builds(tmp_path, make_agent, settings):
    from agents.models import Session
    from sandboxes.models import Sandbox, SandboxStatus
    from sandboxes.services.sessions import session_start
    from studio import tokens

    agent = make_agent(
        system_prompt="Be brief.",
        model="claude-haiku-4-5",
        allowed_tools=["Read", "Bash"],
        max_turns=7,
        permission_mode="dontAsk",
        env={"COLOR": "blue"},
    )
    sandbox = Sandbox.objects.create(agent=agent, backend="local", status=SandboxStatus.READY)
    runtime = RuntimeProcess(
        tmp_path,
        "http://127.0.0.1:9",
        {"AGENT_RUNTIME_SPARE": "0", "RUNTIME_TOKEN": tokens.runtime_token(sandbox.id)},
    ).start()
    sandbox.runtime_url = f"http://127.0.0.1:{runtime.port}"
    sandbox.save()
    session = Session.objects.create(agent=agent, sandbox=sandbox, prompt="hi there")
    run = SessionDir(runtime.state_dir, str(session.pk))
    try:
        session_start(session_id=session.pk)
        received = json.loads(wait_for(lambda: _read(run.path / "request.json")))
        ingest = run.ingest()
    finally:
        runtime.stop()
        runtime.kill_leftovers()

    session.refresh_from_db()
    assert session.status == "starting", session.error
    assert received == {
        "session_id": str(session.pk),
        "prompt": "hi there",
        "options": {
            "system_prompt": "Be brief.",
            "model": "claude-haiku-4-5",
            "allowed_tools": ["Read", "Bash"],
            "max_turns": 7,
            "permission_mode": "dontAsk",
            "resume": None,
            "timeout_seconds": settings.SESSION_TIMEOUT_SECONDS,
            "notices": [],  # nothing to warn about: no browser skill
        },
    }
    assert ingest == {
        "url": settings.BACKEND_API_URL.rstrip("/") + protocol.INGEST_PATH,
        "token": tokens.session_token(session.pk),
    }


def _read(path) -> str | None:
    try:
        return path.read_text() or None
    except OSError:
        return None


@pytest.mark.django_db
@pytest.mark.parametrize("mode", protocol.PERMISSION_MODES)
def test_the_api_takes_every_permission_mode_the_sdk_knows(api, mode):
    res = api.post("/api/agents/", {"name": "modes", "permission_mode": mode}, format="json")
    assert res.status_code == 201, res.content
    assert res.json()["permission_mode"] == mode


def test_it_refuses_a_runtime_that_speaks_another_protocol_at_once():
    from sandboxes.runtime_client import ProtocolMismatch, RuntimeClient

    class Health(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            body = json.dumps({"status": "healthy", "protocol": 99}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sandbox = SimpleNamespace(
        id="0b7c1f2e-0000-4000-8000-000000000000",
        runtime_url=f"http://127.0.0.1:{server.server_address[1]}",
    )
    started = time.monotonic()
    try:
        with pytest.raises(ProtocolMismatch, match="protocol version 99"):
            RuntimeClient(sandbox).wait_healthy(timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    assert time.monotonic() - started < 5  # not after the whole wait
