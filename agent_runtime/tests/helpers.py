"""Test helpers: the real runtime server in a subprocess, and a stand-in for the studio's ingest."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from agent_runtime.procs import kill_session
from agent_runtime.state import SessionDir

REPO = Path(__file__).resolve().parents[2]
TOKEN = "runtime-test-token"
INGEST_TOKEN = "ingest-test-token"


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll until predicate() is truthy; return its value or fail the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")


class Receiver:
    """A stand-in for the studio's ingest: stores lines per session, idempotent on seq."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.lines: dict[str, dict[int, dict]] = {}
        self.statuses: dict[str, list[dict]] = {}
        self.received: list[tuple[str, int]] = []  # every (session, seq) posted, duplicates too
        self.answer_status = 200  # set to e.g. 400 to make it refuse batches
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/internal/logs/append"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.headers.get("Authorization") != f"Bearer {INGEST_TOKEN}":
                    return self._reply(401, {"error": "Unauthorized"})
                if receiver.answer_status != 200:
                    return self._reply(receiver.answer_status, {"error": "Refused"})
                sid = body["session_id"]
                with receiver.lock:
                    stored = receiver.lines.setdefault(sid, {})
                    accepted = duplicates = 0
                    for line in body["lines"]:
                        receiver.received.append((sid, line["seq"]))
                        if line["seq"] in stored:
                            duplicates += 1
                        else:
                            stored[line["seq"]] = line
                            accepted += 1
                    if "status" in body:
                        receiver.statuses.setdefault(sid, []).append(body["status"])
                    last = max(stored) if stored else 0
                self._reply(200, {"accepted": accepted, "duplicates": duplicates, "last_seq": last})

            def _reply(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def session_lines(self, sid: str) -> list[dict]:
        """Stored lines of a session, in seq order."""
        with self.lock:
            stored = dict(self.lines.get(sid, {}))
        return [stored[k] for k in sorted(stored)]

    def result(self, sid: str) -> dict | None:
        """The result line, once it has arrived."""
        lines = self.session_lines(sid)
        return lines[-1] if lines and lines[-1]["kind"] == "result" else None


class RuntimeProcess:
    """The real ``python -m agent_runtime serve`` in a subprocess, restartable."""

    def __init__(self, tmp: Path, model_url: str, extra_env: dict[str, str] | None = None):
        self.port = free_port()
        self.workspace = tmp / "workspace"
        self.home = tmp / "home"
        self.state_dir = self.home / ".agent_runtime"
        self.home.mkdir(parents=True, exist_ok=True)
        self.model_url = model_url
        self.env = {
            **os.environ,
            "HOME": str(self.home),
            "RUNTIME_TOKEN": TOKEN,
            "AGENT_RUNTIME_RECONCILE_SECONDS": "0.3",
            "AGENT_RUNTIME_BACKOFF_CAP": "1.0",
            **(extra_env or {}),
        }
        self.proc: subprocess.Popen | None = None
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)

    def start(self, wait: bool = True) -> RuntimeProcess:
        command = [sys.executable, "-m", "agent_runtime", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--workspace", str(self.workspace)]
        log = (self.home / "server.log").open("ab")
        self.proc = subprocess.Popen(command, env=self.env, cwd=REPO, stdout=log, stderr=log)
        if wait:
            wait_for(self._up, timeout=15)
        return self

    def _up(self) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            self.client.get("/health")
            return True
        return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def request(self, method: str, path: str, token: str | None = TOKEN, **kw: Any):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.client.request(method, path, headers=headers, **kw)

    def execute(self, sid: str, prompt: str, receiver: Receiver, **options: Any) -> httpx.Response:
        body = {
            "session_id": sid,
            "prompt": prompt,
            "options": options,
            "env": model_env(self.model_url),
            "ingest": {"url": receiver.url, "token": INGEST_TOKEN},
        }
        return self.request("POST", "/execute", json=body)

    def session(self, sid: str) -> dict:
        return self.request("GET", f"/sessions/{sid}").json()

    def kill_leftovers(self) -> None:
        """Kill any run still going (a failed test must not leave processes behind)."""
        for session in SessionDir.all(self.state_dir):
            kill_session(session.session_id, session.pid(), grace=0.5)


def model_env(base_url: str) -> dict[str, str]:
    """The execute ``env`` that points the CLI at the scripted model, offline and fast."""
    return {
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": "test",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDE_CODE_DISABLE_EXPERIMENTAL_BETAS": "1",
        "CLAUDE_CODE_MAX_RETRIES": "1",
    }
