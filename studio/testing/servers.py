"""Helpers for tests and benchmarks that start real studio processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, *, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            requests.get(url, timeout=1)
            return
        except (requests.ConnectionError, requests.Timeout):  # a bound port may answer late
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def database_env() -> dict[str, str]:
    """Environment that points a child process at the database this process uses (under
    pytest-django, the test database)."""
    from django.db import connection

    name = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite":
        return {"SQLITE_PATH": str(name)}
    url = os.environ["DATABASE_URL"]
    return {"DATABASE_URL": url.rsplit("/", 1)[0] + "/" + name}


@contextmanager
def studio_process(*args: str, env: dict[str, str] | None = None, port: int | None = None):
    """Run `manage.py runstudio` (or another manage command given in args) on a free port.

    Yields (base_url, process). Output goes to a log file next to the data dir so a failing
    test can show it.
    """
    port = port or free_port()
    environ = {
        **os.environ,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        **database_env(),
        **(env or {}),
    }
    cmd = [sys.executable, "manage.py", *(args or ("runstudio",)), "--port", str(port)]
    log_path = Path(environ.get("STUDIO_DATA_DIR", ROOT / "data")) / f"studio-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_http(base + "/healthz", process=proc)
            yield base, proc
        except BaseException:
            log.flush()
            sys.stderr.write(log_path.read_text(errors="replace")[-5000:])
            raise
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
