"""What both entry points of the gateway share (gateway/asgi.py under the studio's ASGI
server, gateway/views.py under WSGI): the headers sent upstream and relayed back, the
upstream client, relaying an answer while metering it, and recording the call."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Mapping

import httpx
from asgiref.sync import sync_to_async
from django.db import connections

from gateway.meter import UsageMeter
from gateway.services import Grant, model_call_record
from studio.model_env import OAUTH_BETA, upstream_auth_headers

log = logging.getLogger(__name__)

UNREACHABLE = "The studio's model gateway could not reach the model provider."


# Forwarded: any /v1/ path, except the Message Batches API, whose spend arrives later than
# its answer: the gateway could neither meter it nor hold it to a budget.
UNMETERABLE = ("v1/messages/batches",)


def path_refusal(path: str) -> tuple[int, str, str] | None:
    """(status, error type, message) when the gateway does not forward `path`, else None."""
    if not path.startswith("v1/"):
        return 404, "not_found_error", f"The model gateway has no /{path}."
    if any(path == p or path.startswith(p + "/") for p in UNMETERABLE):
        return (
            403,
            "permission_error",
            "Message batches are not available through the studio's model gateway: their "
            "cost could not be metered.",
        )
    return None


def error_body(kind: str, message: str) -> dict:
    """An error as the Messages API shapes it. Sent with `x-should-retry: false`, which
    makes the CLI show it at once instead of retrying (it retries a 429 otherwise, ten
    times with backoff)."""
    return {"type": "error", "error": {"type": kind, "message": message}}


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


def shared_client() -> httpx.AsyncClient:
    """The running loop's client: connections to the upstream are kept alive between calls."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = new_client()
    return client


def new_client() -> httpx.AsyncClient:
    # trust_env off: the studio's HTTP(S)_PROXY settings are for its own outbound traffic;
    # the upstream is exactly ANTHROPIC_BASE_URL.
    return httpx.AsyncClient(timeout=TIMEOUT, limits=LIMITS, trust_env=False)


def credential(headers: Mapping[str, str]) -> str:
    """The sandbox's credential: x-api-key, or an Authorization: Bearer token (lower-case
    header names)."""
    key = headers.get("x-api-key", "")
    if key:
        return key.strip()
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def upstream_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The request's headers as sent upstream: without the sandbox's credential and the
    hop's own headers, with the operator's credential (and the OAuth beta flag with OAuth)."""
    out = {
        name.lower(): value for name, value in headers.items() if name.lower() not in DROP_REQUEST
    }
    out["accept-encoding"] = "identity"  # relayed as is and read by the meter
    auth = upstream_auth_headers()
    out.update(auth)
    if "authorization" in auth:
        betas = [b.strip() for b in out.get("anthropic-beta", "").split(",") if b.strip()]
        if OAUTH_BETA not in betas:
            out["anthropic-beta"] = ",".join([*betas, OAUTH_BETA])
    return out


def answer_headers(upstream: httpx.Response) -> dict[str, str]:
    """The upstream's answer headers as relayed to the sandbox."""
    return {k: v for k, v in upstream.headers.items() if k.lower() not in DROP_RESPONSE}


async def unreachable(call: Call, exc: Exception) -> None:
    log.warning("gateway upstream unreachable session=%s error=%r", call.grant.session_id, exc)
    await call.record(UsageMeter(), status=502, error=f"upstream unreachable: {exc!r}")


async def relay(upstream: httpx.Response, meter: UsageMeter, call: Call, *, wait: bool):
    """Yield the upstream's bytes as they come, feeding the meter; meter the call at the
    end, also when the client went away mid-answer (what was generated was paid for).

    Without `wait` the record is written beside the end of the answer, not before it: the
    CLI goes on as soon as the answer ends, and the next call's budget check sees it a few
    milliseconds later (docs/budgets.md)."""
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
        record = call.record(meter, status=upstream.status_code, error=error)
        if wait:
            # Shielded: a disconnect cancels this task, and the call must still be recorded.
            await asyncio.shield(record)
        else:
            # A moment later: the record's work holds the GIL for a few milliseconds, and
            # the loop still has the answer's last bytes to write (measured: started at
            # once, it added ~3 ms to the end of every answer under load).
            asyncio.get_running_loop().call_later(RECORD_DELAY, _start, record)


RECORD_DELAY = 0.005  # seconds after an answer ends that its record is written
_recording: set[asyncio.Task] = set()  # records being written (a task needs a reference)


def _start(record) -> None:
    task = asyncio.get_running_loop().create_task(record)
    _recording.add(task)
    task.add_done_callback(_recording.discard)


class Call:
    """What is known about one call before its answer is metered."""

    def __init__(self, *, grant: Grant, path: str, created_at, started: float):
        self.grant, self.path, self.created_at, self.started = grant, path, created_at, started

    async def record(self, meter: UsageMeter, *, status: int, error: str) -> None:
        # Not thread-sensitive: the request's own thread may be gone by the time this runs.
        await sync_to_async(self._record_sync, thread_sensitive=False)(
            meter, status=status, error=error or meter.error
        )

    def _record_sync(self, meter: UsageMeter, *, status: int, error: str) -> None:
        try:
            model_call_record(
                grant=self.grant,
                path=self.path,
                model=meter.model,
                usage=meter.usage,
                status=status,
                error=error,
                created_at=self.created_at,
                duration_ms=int((time.monotonic() - self.started) * 1000),
            )
        except Exception:  # the answer is already relayed; a lost record must not be silent
            log.exception("gateway could not record a model call session=%s", self.grant.session_id)
            # This pool thread keeps its connection between records (opening one per call
            # cost more than the rest of the record); after a failure, start afresh.
            connections.close_all()
