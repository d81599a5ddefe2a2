"""Helpers for fault tests: studio processes on the test database, a private Redis, an HTTP
client with the test API's shape, and /proc scans for sandbox processes.

A studio started here gets its own data directory (so its local sandboxes, beat schedule
and reconciliation touch nothing outside the test) and the keys of this process (so a
restarted studio accepts the session tokens its predecessor minted). In production mode it
also gets a Redis of its own: its worker must not consume other runs' tasks.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from rest_framework.authtoken.models import Token

from sandboxes.backends.local_jail import proc_cmdline, proc_environ, proc_start_time

# The sandbox apps' fixtures: `backend` (local and the E2B double), `local`, `e2b_double`.
from sandboxes.tests.conftest import backend, e2b, e2b_double, local  # noqa: F401
from studio.testing.servers import ROOT, database_env, free_port, wait_http

MARKER = "AGENT_STUDIO_SANDBOX"
production = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"),
    reason="needs Redis and PostgreSQL: runs in the production-mode pass of .ci/run",
)


# --- an HTTP client shaped like the test APIClient (sandboxes.tests.flow accepts it) -------


class HttpApi:
    def __init__(self, base: str, token: str):
        self.base = base
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"

    def get(self, path: str, params=None, **_):
        return self.session.get(self.base + path, params=params, timeout=30)

    def post(self, path: str, data=None, format=None, **_):
        return self.session.post(self.base + path, json=data or {}, timeout=60)


@pytest.fixture
def token(user) -> str:
    return Token.objects.create(user=user).key


# --- Redis of our own ------------------------------------------------------------------


class RedisServer:
    """`redis-server` on a free port, without persistence: a stop loses what it held."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--daemonize", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while (
            subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, check=False
            ).stdout.strip()
            != b"PONG"
        ):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"redis-server did not start on {self.port}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@pytest.fixture
def private_redis():
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer().start()
    yield server
    server.stop()


# --- studio processes ------------------------------------------------------------------


@pytest.fixture
def studio_data(settings):
    """The data directory of the studio processes of one test; their jails die with it.
    Under the studio's data dir, not pytest's tmp_path: concurrent pytest runs prune old
    tmp_path roots, which would delete a live jail's workspace and hide it from cleanup."""
    data = settings.DATA_DIR / "faults" / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    data.mkdir(parents=True)
    yield data
    kill_jails(data)
    shutil.rmtree(data, ignore_errors=True)


def kill_jails(data_dir: Path) -> None:
    from sandboxes.backends.local import LocalBackend

    jails = LocalBackend(data_dir=data_dir)
    root = data_dir / "sandboxes"
    for path in root.iterdir() if root.is_dir() else []:
        if path.is_dir():
            with contextlib.suppress(Exception):
                jails.kill(path.name)


@pytest.fixture
def studio_env(request, studio_data, settings) -> dict[str, str]:
    """Environment for `manage.py runstudio` / `celery -A studio worker` in this test."""
    env = {
        "STUDIO_DATA_DIR": str(studio_data),
        "SECRET_KEY": settings.SECRET_KEY,
        "INTERNAL_API_KEY": settings.INTERNAL_API_KEY,
        "SANDBOX_BACKEND": "local",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        **database_env(),
    }
    if settings.REDIS_URL:
        env["REDIS_URL"] = request.getfixturevalue("private_redis").url
    return env


class Process:
    """A child process (a studio or a worker) in its own process group, logging to a file."""

    def __init__(self, argv: list[str], *, env: dict[str, str], log_path: Path):
        self.argv, self.env, self.log_path = argv, env, log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> Process:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole group (a prefork worker's children too) and reap the leader."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


class Studio(Process):
    """`manage.py runstudio` on a fixed port, so it can be restarted where sandboxes call."""

    def __init__(self, *, env: dict[str, str], data_dir: Path, port: int, worker: bool = True):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        argv = [sys.executable, "manage.py", "runstudio", "--port", str(port)]
        if not worker:
            argv.append("--no-worker")
        env = {"BACKEND_API_URL": self.base, **env}
        super().__init__(argv, env=env, log_path=data_dir / f"studio-{port}.log")

    def start(self) -> Studio:
        super().start()
        try:
            wait_http(self.base + "/healthz", timeout=60, process=self.proc)
        except Exception:
            sys.stderr.write(self.tail())
            self.kill()
            raise
        return self


class Worker(Process):
    """A production `celery -A studio worker` (prefork, one child)."""

    def __init__(self, *, env: dict[str, str], data_dir: Path, name: str = "w1"):
        argv = [
            *(sys.executable, "-m", "celery", "-A", "studio", "worker"),
            *("--pool", "prefork", "--concurrency", "1", "--loglevel", "INFO"),
            *("--hostname", f"{name}@faults", "--without-gossip", "--without-mingle"),
        ]
        super().__init__(argv, env=env, log_path=data_dir / f"worker-{name}.log")


@pytest.fixture
def processes():
    """Register processes here; whatever is still running at the end is killed."""
    started: list[Process] = []
    yield started
    for proc in started:
        proc.kill()


@pytest.fixture
def start_studio(studio_env, studio_data, processes):
    def start(*, port: int | None = None, worker: bool = True, **env) -> Studio:
        studio = Studio(
            env={**studio_env, **env}, data_dir=studio_data, port=port or free_port(), worker=worker
        )
        processes.append(studio)
        return studio.start()

    return start


# --- assertions ------------------------------------------------------------------------


def assert_complete_log(lines: list[dict]) -> None:
    """Every seq from 1 to the last exactly once, in order: no gap, no duplicate."""
    seqs = [line["seq"] for line in lines]
    assert seqs == list(range(1, len(seqs) + 1)), seqs


def sandbox_processes(sandbox_id: str) -> list[int]:
    """Live processes of a sandbox: in a jail, every process sits in the sandbox's own
    cgroup (`agent-studio/<sandbox id>`), however it forked; without a jail they inherit
    the marker variable."""
    cgroup = f"/agent-studio/{sandbox_id}".encode()
    found = []
    for entry in os.listdir("/proc"):
        pid = int(entry) if entry.isdigit() else 0
        if not pid or not proc_start_time(pid):
            continue
        try:
            with open(f"/proc/{pid}/cgroup", "rb") as f:
                in_cgroup = any(line.rstrip().endswith(cgroup) for line in f)
        except OSError:
            continue
        if in_cgroup or proc_environ(pid).get(MARKER) == sandbox_id:
            found.append(pid)
    return found


def processes_mentioning(text: str) -> list[int]:
    """Live processes with an argument containing `text` (a jail's bwraps name its dirs)."""
    found = []
    for entry in os.listdir("/proc"):
        pid = int(entry) if entry.isdigit() else 0
        if pid and any(text in arg for arg in proc_cmdline(pid)) and proc_start_time(pid):
            found.append(pid)
    return found


def parent_of(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return 0
    return int(data[data.rindex(b")") + 2 :].split()[1])


def descends_from(pid: int, root: int) -> bool:
    while pid > 1:
        if pid == root:
            return True
        pid = parent_of(pid)
    return False
