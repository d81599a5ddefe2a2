"""`manage.py runstudio`: the whole studio in one process (embedded mode).

An ASGI server for HTTP and WebSockets (daphne), a Celery worker and the beat scheduler in
threads beside it. Nothing else needs to run.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from studio.vendored import vendored_problem

log = logging.getLogger("studio.runstudio")


class Command(BaseCommand):
    help = "Run the embedded studio: web server, background worker and scheduler in one process."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--no-worker",
            action="store_true",
            help="Serve only; a separate `celery -A studio worker` does background work.",
        )
        parser.add_argument("--concurrency", type=int, default=4)

    def handle(self, *args, host: str, port: int, no_worker: bool, concurrency: int, **options):
        problem = vendored_problem()
        if problem:
            raise CommandError(problem)
        if settings.EMBEDDED and not settings.BACKEND_API_URL_SET:
            # Sandboxes on this machine post their logs to wherever this process listens.
            settings.BACKEND_API_URL = served_url(host, port)
        from daphne.server import Server

        from studio.asgi import application
        from studio.celery import app

        worker = None
        if not no_worker:
            if not settings.EMBEDDED and settings.CELERY_BROKER_URL.startswith("memory://"):
                self.stderr.write("The in-memory broker only works in embedded mode.")
            from studio.embedded import EmbeddedWorker

            worker = EmbeddedWorker(app, concurrency=concurrency, ready_signal=True)
            worker.start()
        url = f"http://{host}:{port}/"
        self.stdout.write(
            self.style.SUCCESS(f"Agent Studio is running at {url}")
            + f"\n  sign in:  {url}login/\n  admin:    {url}admin/\n  API docs: {url}api/docs/"
            + f"\n  mode:     {'embedded' if settings.EMBEDDED else 'production'}"
            + f", sandboxes: {settings.SANDBOX_BACKEND}"
            + f"\n  sandboxes reach the studio at BACKEND_API_URL={settings.BACKEND_API_URL}"
        )
        self.stdout.flush()
        try:
            Server(
                application=application,
                endpoints=[f"tcp:port={port}:interface={host}"],
                signal_handlers=True,
                verbosity=0,
                application_close_timeout=5,
                # A busy machine (sandboxes share its cores) can take seconds to answer a
                # WebSocket handshake; daphne's 5 s default then drops the terminal.
                websocket_handshake_timeout=20,
            ).run()
        finally:
            if worker is not None:
                worker.stop()


def served_url(host: str, port: int) -> str:
    """The URL a sandbox on this machine uses to reach a server bound to host:port (a
    wildcard address is reached on loopback)."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host.strip('[]')}]"
    return f"http://{host}:{port}"
