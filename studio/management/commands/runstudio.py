"""`manage.py runstudio`: the whole studio in one process (embedded mode).

An ASGI server for HTTP and WebSockets (uvicorn, on this process's main thread), a Celery
worker and the beat scheduler in threads beside it. Nothing else needs to run. The loop the
server runs on is handed to ``logs.events`` before it serves: the in-memory channel layer's
sockets live on it, and the worker threads publish to them there.
"""

from __future__ import annotations

import asyncio
import logging
import signal

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
        import uvicorn

        from logs.events import use_server_loop
        from studio.asgi import application
        from studio.celery import app
        from studio.serving import UVICORN_OPTIONS

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
        # Django's LOGGING stays in charge (log_config=None); uvicorn says only what went wrong.
        config = uvicorn.Config(
            application,
            host=host,
            port=port,
            log_config=None,
            log_level="warning",
            access_log=False,
            **UVICORN_OPTIONS,
        )
        server = uvicorn.Server(config)

        async def serve() -> None:
            use_server_loop(asyncio.get_running_loop())
            try:
                await server.serve()
            finally:
                use_server_loop(None)

        # uvicorn stops gracefully on SIGTERM, then raises it again: end with exit code 0
        # through the finally below, so the worker stops too.
        signal.signal(signal.SIGTERM, _exit)
        try:
            asyncio.run(serve())
        except KeyboardInterrupt:
            pass
        finally:
            if worker is not None:
                worker.stop()


def _exit(signum, frame) -> None:
    raise SystemExit(0)


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
