"""`manage.py serve`: the production web tier, several daphne processes on one port.

A Python process uses one core, so one daphne process cannot keep a busy studio's ingest
and WebSockets fed on a machine with more. This command binds the port once, starts
``--processes`` daphne servers that all accept from it (the kernel spreads connections
among them), and starts a new one in place of any that dies. WebSockets are served by
whichever process accepted them and reach every line through the Redis channel layer, so
it runs in production mode only (background work runs in Celery workers beside it).
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
            listener = socket.create_server((host, port), backlog=1024)
        except OSError as exc:
            raise CommandError(f"Cannot listen on {host}:{port}: {exc.strerror}.") from None
        listener.set_inheritable(True)
        self.stdout.write(f"Serving http://{host}:{port}/ from {count} daphne processes")
        self.stdout.flush()
        Supervisor(listener, count).run()


class Supervisor:
    """Keeps ``count`` daphne processes serving an inherited listening socket."""

    def __init__(self, listener: socket.socket, count: int):
        self.listener, self.count = listener, count
        self.procs: list[subprocess.Popen] = []
        self.stopping = False

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.procs = [self._start() for _ in range(self.count)]
        try:
            while not self.stopping:
                for i, proc in enumerate(self.procs):
                    if proc.poll() is not None and not self.stopping:
                        log.warning(
                            "web process %s exited (%s); starting another",
                            proc.pid,
                            proc.returncode,
                        )
                        time.sleep(RESTART_DELAY)
                        if not self.stopping:
                            self.procs[i] = self._start()
                time.sleep(0.2)
        finally:
            self._terminate()
            self.listener.close()

    def _start(self) -> subprocess.Popen:
        fd = self.listener.fileno()
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
