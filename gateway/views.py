"""The model gateway as a Django view: `<BACKEND_API_URL>/api/internal/model/v1/...`.

Under the studio's own ASGI server these calls never reach Django: gateway/asgi.py serves
them on the event loop and streams the answers (its docstring says why). This view serves
them wherever Django's handler does: the WSGI test server (live_server) and Django's test
clients. It makes the same checks (gateway_grant), sends the same headers and meters the
same way (gateway/proxy.py), but reads the answer whole before sending it on: a sync
handler cannot relay an event loop's stream as it comes.
"""

from __future__ import annotations

import time

import httpx
from asgiref.sync import async_to_sync
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from gateway import proxy
from gateway.meter import UsageMeter
from gateway.services import Refused, gateway_grant
from studio.model_env import upstream_url


def anthropic_error(status: int, kind: str, message: str) -> JsonResponse:
    response = JsonResponse(proxy.error_body(kind, message), status=status)
    response["x-should-retry"] = "false"
    return response


@csrf_exempt
def model_proxy(request, path: str):
    """Forward one `/v1/...` call upstream for a sandbox's run."""
    created_at, started = timezone.now(), time.monotonic()
    refusal = proxy.path_refusal(path)
    if refusal:
        return anthropic_error(*refusal)
    headers = {name.lower(): value for name, value in request.headers.items()}
    try:
        grant = gateway_grant(credential=proxy.credential(headers))
    except Refused as refusal:
        return anthropic_error(refusal.status, refusal.kind, refusal.message)
    limit = settings.GATEWAY_MAX_REQUEST_BYTES
    length = headers.get("content-length", "")
    body = b"" if length.isdigit() and int(length) > limit else request.read(limit + 1)
    if len(body) > limit or (length.isdigit() and int(length) > limit):
        message = f"The request is larger than the gateway takes ({limit} bytes)."
        return anthropic_error(413, "request_too_large", message)
    outgoing = {
        "method": request.method,
        "url": f"{upstream_url()}/{path}",
        "params": request.META.get("QUERY_STRING") or None,
        "headers": proxy.upstream_headers(headers),
        "content": body,
    }
    call = proxy.Call(grant=grant, path=path, created_at=created_at, started=started)
    return async_to_sync(_exchange)(outgoing, call)


async def _exchange(outgoing: dict, call: proxy.Call):
    """The whole exchange on this call's own event loop and client."""
    async with proxy.new_client() as client:
        try:
            upstream = await client.send(client.build_request(**outgoing), stream=True)
        except httpx.HTTPError as exc:
            await proxy.unreachable(call, exc)
            return anthropic_error(502, "api_error", proxy.UNREACHABLE)
        meter = UsageMeter(upstream.headers.get("content-type", ""))
        chunks = [chunk async for chunk in proxy.relay(upstream, meter, call, wait=True)]
        return HttpResponse(
            b"".join(chunks), status=upstream.status_code, headers=proxy.answer_headers(upstream)
        )
