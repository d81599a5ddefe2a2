"""How the web tier is served: uvicorn (HTTP and WebSockets) in both modes.

- Production: gunicorn runs ``WEB_PROCESSES`` uvicorn workers on one port and replaces any
  that dies. ``manage.py serve`` starts it with this module as its configuration
  (``gunicorn -c python:studio.serving``), as docker-compose's ``web`` and the Dockerfile do.
  WebSockets are served by whichever worker accepted them and reach every line through the
  Redis channel layer.
- Embedded: ``manage.py runstudio`` runs one ``uvicorn.Server`` in its own process, beside
  the Celery worker threads, with the same ``UVICORN_OPTIONS``.

Measured here (bench/ingest.py, see the README's Benchmarks): gunicorn with uvicorn workers
(uvloop, httptools) keeps ingest at or above the two daphne processes it replaced.

The module-level lowercase names below are gunicorn settings; the command line overrides
them (``manage.py serve`` passes ``--bind`` and ``--workers``).
"""

from __future__ import annotations

import os

from uvicorn_worker import UvicornWorker as _GunicornUvicornWorker

# uvicorn options shared by both modes. No ASGI lifespan (the application has none); a
# closing server gives open sockets 5 s, then ends them (the terminal reconnects).
UVICORN_OPTIONS = {"lifespan": "off", "timeout_graceful_shutdown": 5}


class UvicornWorker(_GunicornUvicornWorker):
    """The uvicorn worker for gunicorn (the uvicorn-worker package), with our options."""

    CONFIG_KWARGS = {"loop": "auto", "http": "auto", **UVICORN_OPTIONS}


def web_processes() -> int:
    """``WEB_PROCESSES``, else one per core: a Python process keeps one core busy at most."""
    from studio.env import env_int

    return env_int("WEB_PROCESSES", os.cpu_count() or 1, minimum=1)


# ---- gunicorn settings -----------------------------------------------------------------

wsgi_app = "studio.asgi:application"
worker_class = "studio.serving.UvicornWorker"
workers = web_processes()
bind = ["127.0.0.1:8000"]
graceful_timeout = 10  # seconds a stopping worker gets before it is killed
backlog = 1024
# No runtime control socket: its default path is per user, not per instance, so two studios
# on one machine (tests, benchmarks) would share it. Docker restarts and signals suffice.
control_socket_disable = True
