"""Two web processes on the Redis channel layer and PostgreSQL: a socket on one receives the
lines ingested through the other."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from django.db import connection
from rest_framework.authtoken.models import Token
from websockets.sync.client import connect as ws_connect

from logs.tests.conftest import APPEND_URL, line, lines
from studio.tokens import session_token

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (os.environ.get("REDIS_URL") and os.environ.get("DATABASE_URL")),
        reason="needs REDIS_URL and DATABASE_URL (production mode): two processes share them",
    ),
]

ASGI_APP = "studio.asgi:application"
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url_for_tests() -> str:
    """DATABASE_URL pointing at the test database pytest-django created."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


def start_daphne(port: int, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_tests(),
        "DATABASE_POOL": "true",  # as docker-compose runs its web processes
        "ALLOWED_HOSTS": "127.0.0.1",
        "DEBUG": "false",
        "SECURE_SSL_REDIRECT": "false",
    }
    with log.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), ASGI_APP],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def wait_ready(port: int, proc: subprocess.Popen, deadline: float = 30) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        assert proc.poll() is None, "daphne exited early"
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"daphne on {port} did not start")


@pytest.fixture
def two_servers(transactional_db, tmp_path):
    ports = [free_port(), free_port()]
    procs = [start_daphne(p, tmp_path / f"daphne-{p}.log") for p in ports]
    try:
        for port, proc in zip(ports, procs, strict=True):
            wait_ready(port, proc)
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def receive(ws, timeout: float = 5) -> dict:
    while True:
        message = json.loads(ws.recv(timeout=timeout))
        if message["type"] != "heartbeat":
            return message


def test_a_socket_on_one_process_gets_lines_ingested_through_another(
    two_servers, user, make_session
):
    port_a, port_b = two_servers
    session = make_session(status="running")
    key = Token.objects.create(user=user).key
    ingest = f"http://127.0.0.1:{port_b}{APPEND_URL}"
    auth = {"Authorization": f"Bearer {session_token(session.pk)}"}

    def post(batch):
        body = {"session_id": str(session.pk), "lines": batch}
        r = requests.post(ingest, json=body, headers=auth, timeout=10)
        assert r.status_code == 200, r.text

    post(lines(1, 3))  # before the socket: replayed from the database
    with ws_connect(
        f"ws://127.0.0.1:{port_a}/ws/sessions/{session.pk}/",
        additional_headers={"Authorization": f"Token {key}"},
        origin=f"http://127.0.0.1:{port_a}",
        open_timeout=10,
    ) as ws:
        assert receive(ws)["type"] == "session"
        seqs = []
        post(lines(4, 50))
        post(lines(40, 60))  # overlaps: stored and sent once
        post([line(61, "result", data={"status": "completed", "num_turns": 1})])
        final = None
        while len(seqs) < 61 or final is None:
            message = receive(ws)
            if message["type"] == "lines":
                seqs += [x["seq"] for x in message["lines"]]
            elif message["session"]["status"] == "completed":
                final = message["session"]
        assert seqs == list(range(1, 62))
        assert final["num_turns"] == 1
