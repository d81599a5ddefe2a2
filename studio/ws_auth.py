"""WebSocket handshakes: the Origin rule (browsers come from this site only), then
authentication by the Django session cookie or `Authorization: Token <key>`."""

from __future__ import annotations

from urllib.parse import urlsplit

from channels.auth import AuthMiddleware
from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain


@database_sync_to_async
def _user_for_token(key: str):
    from rest_framework.authtoken.models import Token

    try:
        token = Token.objects.select_related("user").get(key=key)
    except Token.DoesNotExist:
        return AnonymousUser()
    return token.user if token.user.is_active else AnonymousUser()


class _TokenAuthMiddleware:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth.lower().startswith("token "):
            scope = dict(scope, user=await _user_for_token(auth[6:].strip()))
        return await self.inner(scope, receive, send)


class _SessionUserMiddleware(AuthMiddleware):
    """Channels' AuthMiddleware, but a token header, valid or not, decides alone."""

    async def __call__(self, scope, receive, send):
        if "user" in scope:
            return await self.inner(scope, receive, send)
        return await super().__call__(scope, receive, send)


def TokenOrSessionAuthMiddleware(inner):
    return CookieMiddleware(SessionMiddleware(_TokenAuthMiddleware(_SessionUserMiddleware(inner))))


def _scope_is_secure(scope, headers: dict[bytes, bytes]) -> bool:
    """As Django's ``request.is_secure()``: wss, or the proxy header SECURE_PROXY_SSL_HEADER
    names (set in production, where TLS ends at the proxy)."""
    if scope.get("scheme") == "wss":
        return True
    header = settings.SECURE_PROXY_SSL_HEADER
    if not header:
        return False
    name, value = header
    name = name.removeprefix("HTTP_").replace("_", "-").lower().encode("latin-1")
    sent = headers.get(name, b"").decode("latin-1").split(",")[0].strip()
    return sent == value


def _allowed_hosts() -> list[str]:
    hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]  # what Django allows then
    return hosts


def origin_allowed(scope) -> bool:
    """Whether a WebSocket handshake's Origin may open a socket, by Django's own CSRF rule.

    A present Origin must be this server's origin, scheme, host and port alike: the Host the
    browser connected to (one of ALLOWED_HOSTS) with http for ws and https for wss (or behind
    a TLS proxy); or one of CSRF_TRUSTED_ORIGINS (``https://*.example.com`` allowed). So a page
    on another port or scheme of the same host, or a rebinding DNS name, is refused. Browsers
    always send Origin, and cross-site hijacking needs a browser: a handshake without one is
    a program (it authenticates with a Token) and goes on to authentication.
    """
    headers = dict(scope.get("headers") or [])
    origin = headers.get(b"origin")
    if origin is None:
        return True
    origin = origin.decode("latin-1")
    host = headers.get(b"host", b"").decode("latin-1")
    if host and validate_host(split_domain_port(host)[0], _allowed_hosts()):
        scheme = "https" if _scope_is_secure(scope, headers) else "http"
        if origin == f"{scheme}://{host}":
            return True
    trusted = settings.CSRF_TRUSTED_ORIGINS
    if origin in trusted:
        return True
    try:
        parsed = urlsplit(origin)
    except ValueError:
        return False
    return any(
        parsed.scheme == pattern.scheme and is_same_domain(parsed.netloc, pattern.netloc[1:])
        for pattern in map(urlsplit, trusted)
        if pattern.netloc.startswith("*.")
    )


class OriginCheck:
    """Refuse (close before accept) a WebSocket handshake whose Origin is not allowed."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(scope):
            denier = WebsocketDenier()
            return await denier(scope, receive, send)
        return await self.inner(scope, receive, send)
