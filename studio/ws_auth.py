"""WebSocket authentication: the Django session cookie, or `Authorization: Token <key>`."""

from __future__ import annotations

from channels.auth import AuthMiddleware
from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.contrib.auth.models import AnonymousUser


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


class _BrowserOriginValidator(OriginValidator):
    """Browsers always send Origin on a WebSocket, and cross-site hijacking needs a browser:
    a present Origin must be one of ALLOWED_HOSTS (read per connection); a request without
    one is a program (it authenticates with a Token) and goes on to authentication."""

    def valid_origin(self, parsed_origin):
        if parsed_origin is None:
            return True
        from django.conf import settings

        hosts = settings.ALLOWED_HOSTS
        if settings.DEBUG and not hosts:
            hosts = ["localhost", "127.0.0.1", "[::1]"]
        return any(self.match_allowed_origin(parsed_origin, host) for host in hosts)


def OriginCheck(inner):
    return _BrowserOriginValidator(inner, [])
