"""`manage.py serve`: the production web tier, gunicorn running uvicorn workers on one port.

A Python process uses one core, so one process cannot keep a busy studio's ingest and
WebSockets fed on a machine with more. This command checks the configuration, then replaces
itself with gunicorn (``exec``: the same pid, so signals from Docker reach gunicorn), which
runs ``--processes`` uvicorn workers on the port and starts a new one in place of any that
dies; ``studio/serving.py`` is its configuration. WebSockets are served by whichever worker
accepted them and reach every line through the Redis channel layer, so it runs in
production mode only (background work runs in Celery workers beside it).
SIGTERM or SIGINT stops them all.
"""

from __future__ import annotations

import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from studio.serving import web_processes
from studio.vendored import vendored_problem


class Command(BaseCommand):
    help = "Serve HTTP and WebSockets from gunicorn's uvicorn workers on one port."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="an IPv4 address")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--processes",
            type=int,
            default=None,
            help="uvicorn worker processes (default: WEB_PROCESSES, else one per core)",
        )

    def handle(self, *args, host: str, port: int, processes: int | None, **options):
        problem = vendored_problem()
        if problem:
            raise CommandError(problem)
        count = processes or web_processes()
        if count < 1:
            raise CommandError("--processes must be at least 1.")
        if settings.EMBEDDED:
            raise CommandError(
                "serve is the production web tier: its processes share WebSockets through "
                "Redis. Set REDIS_URL and DATABASE_URL, or run the embedded studio with "
                "manage.py runstudio."
            )
        self.stdout.write(f"Serving http://{host}:{port}/ from {count} uvicorn workers (gunicorn)")
        self.stdout.flush()
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            "python:studio.serving",
            "--bind",
            f"{host}:{port}",
            "--workers",
            str(count),
        ]
        os.execv(sys.executable, argv)  # noqa: S606 - our own argv, no user input
