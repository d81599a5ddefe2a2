"""`manage.py serve`: gunicorn's uvicorn workers on one port, each replaced when it dies,
serving HTTP and WebSockets; the Dockerfile and docker-compose start the same command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from studio.testing.servers import ROOT, free_port, studio_process


def children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def wait_for(condition, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_it_refuses_embedded_mode():
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    port = str(free_port())
    cmd = [sys.executable, "manage.py", "serve", "--port", port]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "REDIS_URL" in done.stderr


@pytest.mark.django_db
def test_it_serves_from_each_process_and_replaces_one_that_dies(settings):
    if settings.EMBEDDED:
        pytest.skip("several web processes need production mode (Redis, PostgreSQL)")
    env = {"DATABASE_POOL": "true", "DEBUG": "false", "SECURE_SSL_REDIRECT": "false"}
    with studio_process("serve", "--processes", "2", env=env) as (base, proc):
        first = wait_for(lambda: (pids := children(proc.pid)) and len(pids) == 2 and pids)
        for _ in range(20):  # the kernel hands connections to both: every answer is whole
            assert requests.get(base + "/healthz", timeout=10).status_code == 200

        victim = sorted(first)[0]
        os.kill(victim, signal.SIGKILL)
        now = wait_for(lambda: (pids := children(proc.pid)) - first and len(pids) == 2 and pids)
        assert victim not in now
        wait_for(lambda: all(_ok(base) for _ in range(10)))

        assert "gunicorn" in Path(f"/proc/{proc.pid}/cmdline").read_text()  # exec'd in place
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert not any(Path(f"/proc/{pid}").exists() for pid in now)


@pytest.mark.django_db(transaction=True)
def test_a_socket_through_serve_gets_the_lines_ingested_through_it(settings, user, make_session):
    if settings.EMBEDDED:
        pytest.skip("serve runs in production mode only (Redis, PostgreSQL)")
    from rest_framework.authtoken.models import Token
    from websockets.sync.client import connect

    from studio.tokens import session_token

    session = make_session(status="running")
    key = Token.objects.create(user=user).key
    env = {"DATABASE_POOL": "true", "DEBUG": "false", "SECURE_SSL_REDIRECT": "false"}
    with (
        studio_process("serve", "--processes", "2", env=env) as (base, _proc),
        connect(
            base.replace("http", "ws", 1) + f"/ws/sessions/{session.pk}/",
            additional_headers={"Authorization": f"Token {key}"},
            origin=base,
            open_timeout=10,
        ) as ws,
    ):
        assert json.loads(ws.recv(timeout=10))["type"] == "session"
        line = {"seq": 1, "kind": "stdout", "text": "hello", "ts": "2026-01-01T00:00:00Z"}
        res = requests.post(
            base + "/api/internal/logs/append",
            json={"session_id": str(session.pk), "lines": [line]},
            headers={"Authorization": f"Bearer {session_token(session.pk)}"},
            timeout=10,
        )
        assert res.status_code == 200, res.text
        message = json.loads(ws.recv(timeout=10))
        while message["type"] == "heartbeat":
            message = json.loads(ws.recv(timeout=10))
        assert message["type"] == "lines"
        assert [x["text"] for x in message["lines"]] == ["hello"]


def test_the_image_and_compose_start_the_same_web_command():
    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = json.loads(next(x for x in dockerfile.splitlines() if x.startswith("CMD "))[4:])
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    web = compose["services"]["web"]["command"]
    assert "exec " + " ".join(cmd) in web
    assert cmd[:3] == ["python", "manage.py", "serve"]


def _ok(base: str) -> bool:
    try:
        return requests.get(base + "/healthz", timeout=10).status_code == 200
    except requests.ConnectionError:
        return False
