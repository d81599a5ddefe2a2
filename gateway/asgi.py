"""The model gateway as the studio's ASGI server runs it: calls under GATEWAY_PATH are served
here, on the event loop, before Django's handler (studio/asgi.py routes them).

Why not a Django view: the studio's middleware chain runs in a worker thread (studio/asgi.py,
OneHopASGIHandler), so a view that relays a stream from the event loop hops from the loop to
that thread and back twice per call. bench/gateway.py measured that at 13-19 ms of overhead
per call on a loaded two-core machine, against a target of 5 ms. Here a call costs one hop
off the loop (the credential and budget check, gateway_grant) and the record after the
answer, which is written beside it. Nothing of the middleware chain applies to these calls:
no cookies, no CSRF, no sessions; the credential is the only authentication. The Django view
(gateway/views.py) serves the same calls under WSGI (the test server) and Django's own ASGI
handler, with the same checks, headers and metering (gateway/proxy.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import httpx
from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone

from gateway import proxy
from gateway.meter import UsageMeter
from gateway.services import Refused, gateway_grant
from studio.model_env import GATEWAY_PATH, upstream_url

log = logging.getLogger(__name__)
PREFIX = GATEWAY_PATH + "/"


class GatewayRouter:
    """Serve HTTP requests under GATEWAY_PATH here; pass everything else to `app`."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith(PREFIX):
            return await guarded(scope, receive, send)
        return await self.app(scope, receive, send)


class _Gone(Exception):
    """The client went away before its request was whole: nothing is forwarded."""


async def guarded(scope, receive, send) -> None:
    """`serve`, with a failure of the studio's own (its database, say) answered as a 500 in
    the API's shape, not a traceback page."""
    started = False

    async def tracking_send(message):
        nonlocal started
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await serve(scope, receive, tracking_send)
    except _Gone:
        return
    except Exception:
        log.exception("model gateway failed path=%s", scope["path"])
        if not started:
            await _error(send, 500, "api_error", "The studio's model gateway failed.")


async def serve(scope, receive, send) -> None:
    created_at, started = timezone.now(), time.monotonic()
    path = scope["path"][len(PREFIX) :]
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    refusal = proxy.path_refusal(path)
    if refusal:
        return await _error(send, *refusal)
    try:
        grant = await sync_to_async(gateway_grant, thread_sensitive=False)(
            credential=proxy.credential(headers)
        )
    except Refused as refusal:
        return await _error(send, refusal.status, refusal.kind, refusal.message)
    body = await _body(receive, headers)
    if body is None:
        limit = settings.GATEWAY_MAX_REQUEST_BYTES
        message = f"The request is larger than the gateway takes ({limit} bytes)."
        return await _error(send, 413, "request_too_large", message)
    call = proxy.Call(grant=grant, path=path, created_at=created_at, started=started)
    client = proxy.shared_client()
    outgoing = client.build_request(
        scope["method"],
        f"{upstream_url()}/{path}",
        params=scope.get("query_string", b"").decode("latin-1") or None,
        headers=proxy.upstream_headers(headers),
        content=body,
    )
    try:
        upstream = await client.send(outgoing, stream=True)
    except httpx.HTTPError as exc:
        await proxy.unreachable(call, exc)
        return await _error(send, 502, "api_error", proxy.UNREACHABLE)
    meter = UsageMeter(upstream.headers.get("content-type", ""))
    await send(
        {
            "type": "http.response.start",
            "status": upstream.status_code,
            "headers": [
                (k.encode("latin-1"), v.encode("latin-1"))
                for k, v in [*proxy.answer_headers(upstream).items(), ("x-accel-buffering", "no")]
            ],
        }
    )
    relay = asyncio.ensure_future(_relay(send, proxy.relay(upstream, meter, call, wait=False)))
    gone = asyncio.ensure_future(_disconnected(receive))
    await asyncio.wait({relay, gone}, return_when=asyncio.FIRST_COMPLETED)
    for task in (relay, gone):
        task.cancel()  # a client that left stops the upstream; the relay still meters it


async def _relay(send, chunks) -> None:
    async for chunk in chunks:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _disconnected(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _body(receive, headers: dict[str, str]) -> bytes | None:
    """The request body, or None when it is over GATEWAY_MAX_REQUEST_BYTES."""
    limit = settings.GATEWAY_MAX_REQUEST_BYTES
    length = headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        return None
    parts, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Gone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
        if not message.get("more_body"):
            return b"".join(parts)


async def _error(send, status: int, kind: str, message: str) -> None:
    body = json.dumps(proxy.error_body(kind, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-should-retry", b"false"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
