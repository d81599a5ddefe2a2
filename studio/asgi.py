"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

from __future__ import annotations

import os

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
django.setup(set_prefix=False)


class OneHopASGIHandler(ASGIHandler):
    """Django's ASGI handler with the middleware chain run as under WSGI: each request's
    middleware and view run in one worker thread, reached in one hop from the event loop.

    Every view here is sync, and WhiteNoise (near the top of MIDDLEWARE) is sync-only, so
    the stock async chain hops between the loop and the thread twice for each middleware
    below it: most of a small request's CPU time.
    """

    def load_middleware(self, is_async=False):
        super().load_middleware(is_async=False)
        self._middleware_chain = sync_to_async(self._middleware_chain, thread_sensitive=True)


django_asgi_app = OneHopASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from studio.routing import websocket_urlpatterns  # noqa: E402
from studio.ws_auth import OriginCheck, TokenOrSessionAuthMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginCheck(TokenOrSessionAuthMiddleware(URLRouter(websocket_urlpatterns))),
    }
)
