"""`manage.py serve`: the production web tier, several daphne processes on one port.

A Python process uses one core, so one daphne process cannot keep a busy studio's ingest
and WebSockets fed on a machine with more. This command binds the port once per
process (SO_REUSEPORT: the kernel spreads connections among them), starts ``--processes``
daphne servers on those sockets, and starts a new one in place of any that dies.
WebSockets are served by whichever process accepted them and reach every line through
the Redis channel layer, so it runs in production mode only (background work runs in
Celery workers beside it).
SIGTERM or SIGINT stops them all.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from studio.env import env_int
from studio.vendored import vendored_problem

log = logging.getLogger("studio.serve")

RESTART_DELAY = 1.0  # seconds before a process that died is replaced (no busy crash loop)
STOP_GRACE = 10.0  # seconds the processes get to finish on SIGTERM before SIGKILL


class Command(BaseCommand):
    help = "Serve HTTP and WebSockets from several daphne processes sharing one port."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="an IPv4 address")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--processes",
            type=int,
            default=None,
            help="daphne processes (default: WEB_PROCESSES, else one per core)",
        )

    def handle(self, *args, host: str, port: int, processes: int | None, **options):
        problem = vendored_problem()
        if problem:
            raise CommandError(problem)
        count = processes or env_int("WEB_PROCESSES", os.cpu_count() or 1, minimum=1)
        if count < 1:
            raise CommandError("--processes must be at least 1.")
        if settings.EMBEDDED:
            raise CommandError(
                "serve is the production web tier: its processes share WebSockets through "
                "Redis. Set REDIS_URL and DATABASE_URL, or run the embedded studio with "
                "manage.py runstudio."
            )
        try:
            # A socket per process on the same port (SO_REUSEPORT): the kernel spreads new
            # connections evenly among them, where processes racing to accept from one
            # socket leave the busiest with the most.
            listeners = [
                socket.create_server((host, port), backlog=1024, reuse_port=True)
                for _ in range(count)
            ]
        except OSError as exc:
            raise CommandError(f"Cannot listen on {host}:{port}: {exc.strerror}.") from None
        self.stdout.write(f"Serving http://{host}:{port}/ from {count} daphne processes")
        self.stdout.flush()
        Supervisor(listeners).run()


class Supervisor:
    """Keeps a daphne process serving each listening socket. A socket outlives its process:
    connections that arrive while one is replaced wait in its backlog."""

    def __init__(self, listeners: list[socket.socket]):
        self.listeners = listeners
        self.procs: list[subprocess.Popen] = []
        self.stopping = False

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.procs = [self._start(listener) for listener in self.listeners]
        try:
            while not self.stopping:
                for i, proc in enumerate(self.procs):
                    if proc.poll() is not None and not self.stopping:
                        code = proc.returncode
                        log.warning("web process %s exited (%s); starting another", proc.pid, code)
                        time.sleep(RESTART_DELAY)
                        if not self.stopping:
                            self.procs[i] = self._start(self.listeners[i])
                time.sleep(0.2)
        finally:
            self._terminate()
            for listener in self.listeners:
                listener.close()

    def _start(self, listener: socket.socket) -> subprocess.Popen:
        fd = listener.fileno()
        cmd = [
            sys.executable,
            "-m",
            "daphne",
            "--fd",
            str(fd),
            "--application-close-timeout",
            "5",
            # A busy machine can take seconds to answer a WebSocket handshake; daphne's 5 s
            # default then drops the terminal.
            "--websocket_connect_timeout",
            "20",
            "studio.asgi:application",
        ]
        proc = subprocess.Popen(cmd, pass_fds=(fd,))
        log.info("web process %s started", proc.pid)
        return proc

    def _stop(self, signum, frame) -> None:
        self.stopping = True

    def _terminate(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + STOP_GRACE
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
