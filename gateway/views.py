"""The model gateway: `<BACKEND_API_URL>/api/internal/model/v1/...` forwarded upstream.

A sandbox's CLI sends its session's credential (x-api-key, or Authorization: Bearer); the
gateway checks it and the run's budgets (gateway.services.gateway_grant), swaps it for the
operator's key or OAuth token, and relays the answer as it arrives, byte for byte, reading
its usage on the way (gateway.meter) and metering the call when the answer ends.

Under ASGI (daphne, runstudio) the answer streams: the view awaits the upstream's headers,
and the body is relayed from an async iterator on the server's event loop by one shared
httpx.AsyncClient per loop (connections to the upstream are kept alive between calls).
Under WSGI (Django's test server) the answer is read whole and then sent: Django can only
consume an async iterator there by collecting it on another event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref

import httpx
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from gateway.meter import UsageMeter
from gateway.services import Grant, Refused, gateway_grant, model_call_record
from studio.model_env import OAUTH_BETA, upstream_auth_headers, upstream_url

log = logging.getLogger(__name__)

# Request headers never forwarded: the sandbox's credential, hop-by-hop headers (RFC 9110
# 7.6.1), what httpx sets itself, and what only concerns the hop to the studio.
DROP_REQUEST = frozenset(
    {
        "x-api-key",
        "authorization",
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "cookie",
        "accept-encoding",
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-real-ip",
    }
)
# Answer headers never relayed: hop-by-hop ones, and what the studio's server sets itself.
DROP_RESPONSE = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "content-encoding",
        "set-cookie",
        "server",
        "date",
    }
)
TIMEOUT = httpx.Timeout(connect=10.0, read=600.0, write=60.0, pool=30.0)
LIMITS = httpx.Limits(max_connections=None, max_keepalive_connections=64)

_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _shared_client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = _new_client()
    return client


def _new_client() -> httpx.AsyncClient:
    # trust_env off: the studio's HTTP(S)_PROXY settings are for its own outbound traffic;
    # the upstream is exactly ANTHROPIC_BASE_URL.
    return httpx.AsyncClient(timeout=TIMEOUT, limits=LIMITS, trust_env=False)


def anthropic_error(status: int, kind: str, message: str) -> JsonResponse:
    """An error as the Messages API shapes it. `x-should-retry: false` makes the CLI show it
    at once instead of retrying (it retries a 429 otherwise, ten times with backoff)."""
    response = JsonResponse(
        {"type": "error", "error": {"type": kind, "message": message}}, status=status
    )
    response["x-should-retry"] = "false"
    return response


def _credential(request) -> str:
    key = request.headers.get("x-api-key", "")
    if key:
        return key.strip()
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@csrf_exempt
async def model_proxy(request, path: str):
    """Forward one `/v1/...` call upstream for a sandbox's run (see the module docstring)."""
    created_at, started = timezone.now(), time.monotonic()
    if not path.startswith("v1/"):
        return anthropic_error(404, "not_found_error", f"The model gateway has no /{path}.")
    try:
        grant = await sync_to_async(gateway_grant)(credential=_credential(request))
    except Refused as refusal:
        return anthropic_error(refusal.status, refusal.kind, refusal.message)
    length = request.headers.get("content-length", "0")
    length = int(length) if length.isdigit() else 0
    if length > settings.GATEWAY_MAX_REQUEST_BYTES:
        return anthropic_error(
            413,
            "request_too_large",
            f"The request is {length} bytes; the gateway takes at most "
            f"{settings.GATEWAY_MAX_REQUEST_BYTES}.",
        )
    body = request.read(settings.GATEWAY_MAX_REQUEST_BYTES + 1)
    if len(body) > settings.GATEWAY_MAX_REQUEST_BYTES:
        return anthropic_error(413, "request_too_large", "The request body is too large.")

    streaming = isinstance(request, ASGIRequest)
    client = _shared_client() if streaming else _new_client()
    upstream_request = client.build_request(
        request.method,
        f"{upstream_url()}/{path}",
        params=request.META.get("QUERY_STRING") or None,
        headers=_upstream_headers(request),
        content=body,
    )
    call = _Call(grant=grant, path=path, created_at=created_at, started=started)
    try:
        upstream = await client.send(upstream_request, stream=True)
    except httpx.HTTPError as exc:
        if not streaming:
            await client.aclose()
        log.warning("gateway upstream unreachable session=%s error=%r", grant.session_id, exc)
        await call.record(UsageMeter(), status=502, error=f"upstream unreachable: {exc!r}")
        return anthropic_error(
            502, "api_error", "The studio's model gateway could not reach the model provider."
        )
    meter = UsageMeter(upstream.headers.get("content-type", ""))
    headers = {k: v for k, v in upstream.headers.items() if k.lower() not in DROP_RESPONSE}
    if streaming:
        response = StreamingHttpResponse(
            _relay(upstream, meter, call), status=upstream.status_code, headers=headers
        )
    else:
        try:
            chunks = [chunk async for chunk in _relay(upstream, meter, call)]
        finally:
            await client.aclose()
        response = HttpResponse(b"".join(chunks), status=upstream.status_code, headers=headers)
    # No proxy or server buffering in between: the CLI renders tokens as they come.
    response["X-Accel-Buffering"] = "no"
    return response


def _upstream_headers(request) -> dict[str, str]:
    headers = {
        name.lower(): value
        for name, value in request.headers.items()
        if name.lower() not in DROP_REQUEST
    }
    headers["accept-encoding"] = "identity"  # relayed as is and read by the meter
    auth = upstream_auth_headers()
    headers.update(auth)
    if "authorization" in auth:
        betas = [b.strip() for b in headers.get("anthropic-beta", "").split(",") if b.strip()]
        if OAUTH_BETA not in betas:
            headers["anthropic-beta"] = ",".join([*betas, OAUTH_BETA])
    return headers


async def _relay(upstream: httpx.Response, meter: UsageMeter, call: _Call):
    """Yield the upstream's bytes as they come, feeding the meter; meter the call at the
    end, also when the client went away mid-answer (what was generated was paid for)."""
    error = ""
    try:
        async for chunk in upstream.aiter_raw():
            meter.feed(chunk)
            yield chunk
    except httpx.HTTPError as exc:
        error = f"upstream stream broke: {exc!r}"
    finally:
        await upstream.aclose()
        meter.finish()
        # Shielded: a disconnect cancels this task, and the call must still be recorded.
        await asyncio.shield(call.record(meter, status=upstream.status_code, error=error))


class _Call:
    """What is known about one call before its answer is metered."""

    def __init__(self, *, grant: Grant, path: str, created_at, started: float):
        self.grant, self.path, self.created_at, self.started = grant, path, created_at, started

    async def record(self, meter: UsageMeter, *, status: int, error: str) -> None:
        try:
            await sync_to_async(model_call_record)(
                grant=self.grant,
                path=self.path,
                model=meter.model,
                usage=meter.usage,
                status=status,
                error=error or meter.error,
                created_at=self.created_at,
                duration_ms=int((time.monotonic() - self.started) * 1000),
            )
        except Exception:  # the answer is already relayed; a lost record must not be silent
            log.exception("gateway could not record a model call session=%s", self.grant.session_id)
