"""`manage.py serve`: several daphne processes on one port, each replaced when it dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

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

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert not any(Path(f"/proc/{pid}").exists() for pid in now)


def _ok(base: str) -> bool:
    try:
        return requests.get(base + "/healthz", timeout=10).status_code == 200
    except requests.ConnectionError:
        return False
