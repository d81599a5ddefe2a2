"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

from __future__ import annotations

import gc
import os
from concurrent.futures import ThreadPoolExecutor

import django
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.db import connections
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
django.setup(set_prefix=False)


class OneHopASGIHandler(ASGIHandler):
    """Django's ASGI handler with the middleware chain run as under a threaded WSGI server:
    each request's middleware and view run in one worker thread, reached in one hop from
    the event loop, and the worker threads are kept from one request to the next.

    Every view here is sync, and WhiteNoise (near the top of MIDDLEWARE) is sync-only, so
    the stock async chain hops between the loop and the thread twice for each middleware
    below it: most of a small request's CPU time. And the stock handler starts a thread
    for each request (and another to join it), each start holding up the event loop until
    the new thread runs, and each thread opening its database connection anew.

    So the chain is built synchronously (``load_middleware(is_async=False)``, as Django's
    WSGIHandler builds it) and ``get_response_async`` runs the sync ``get_response`` in one
    ``sync_to_async`` call: the public methods Django's two handlers share, no private
    attribute. A request runs in a single-thread executor taken from the idle ones (made
    when there is none) and given back after the request, handed to asgiref's public
    ``ThreadSensitiveContext(executor=...)``; ``IDLE_THREADS`` are kept. A thread keeps its
    database connection between requests as Django's CONN_MAX_AGE says, and Django's
    request_finished signal runs in the request's own thread, so it closes (or gives back
    to the pool) that thread's connection. So a web process holds at most as many database
    connections as it has threads: ``IDLE_THREADS`` plus its requests in flight.
    """

    IDLE_THREADS = 16

    def __init__(self):
        super().__init__()
        self.idle: list[ThreadPoolExecutor] = []

    def load_middleware(self, is_async=False):
        super().load_middleware(is_async=False)

    async def get_response_async(self, request):
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await super().__call__(scope, receive, send)
        executor = self.idle.pop() if self.idle else ThreadPoolExecutor(1, "request")
        try:
            async with ThreadSensitiveContext(executor=executor):
                await super().__call__(scope, receive, send)
        finally:
            if len(self.idle) < self.IDLE_THREADS:
                self.idle.append(executor)
            else:
                _retire(executor)

    def close_idle_threads(self) -> None:
        """End the idle threads, closing their database connections first."""
        while self.idle:
            _retire(self.idle.pop())


def _retire(executor: ThreadPoolExecutor) -> None:
    # Connections are per thread: closed in the thread that holds them, before it ends.
    executor.submit(connections.close_all)
    executor.shutdown(wait=False)


django_asgi_app = OneHopASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from gateway.asgi import GatewayRouter  # noqa: E402
from studio.routing import websocket_urlpatterns  # noqa: E402
from studio.ws_auth import OriginCheck, TokenOrSessionAuthMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        # The model gateway's calls are served on the loop, before Django (gateway/asgi.py).
        "http": GatewayRouter(django_asgi_app),
        "websocket": OriginCheck(TokenOrSessionAuthMiddleware(URLRouter(websocket_urlpatterns))),
    }
)


def _freeze_startup_objects() -> None:
    """Startup leaves a few hundred thousand objects that live as long as the process
    (modules, the URLconf, settings); Python's cyclic collector walks all of them on each
    full collection, which cost ~10% of a 300-line append's CPU. Load the URLconf (it
    imports every view) and move what exists now out of the collector's way."""
    get_resolver().url_patterns  # noqa: B018
    gc.collect()
    gc.freeze()


_freeze_startup_objects()
