"""The gateway forwards a sandbox's call with the operator's credential, streams the answer
through unchanged, meters it, and refuses what it must in the Messages API's own shape."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal

import pytest
from django.test import Client

from agents.models import SessionStatus
from conftest import MODEL_ENV
from gateway.models import ModelCall
from gateway.pricing import cost_usd
from gateway.tests.conftest import scripted_usage
from sandboxes.models import SandboxStatus
from studio import tokens

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/internal/model/v1/messages?beta=true"
REAL_KEY = MODEL_ENV["ANTHROPIC_API_KEY"]


def body(prompt: str = "hello", **extra) -> dict:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "stream": True,
        "messages": [{"role": "user", "content": prompt}],
        **extra,
    }


def post(credential: str, payload: dict, *, path: str = URL, **headers):
    return Client().post(
        path,
        data=json.dumps(payload),
        content_type="application/json",
        HTTP_X_API_KEY=credential,
        HTTP_ANTHROPIC_VERSION="2023-06-01",
        **headers,
    )


def test_it_forwards_with_the_operators_key_and_never_the_sandboxes(scripted_model, running):
    _, credential = running()
    res = post(credential, body(), HTTP_COOKIE="sessionid=abc", HTTP_ANTHROPIC_BETA="x-1")
    assert res.status_code == 200, res.content
    assert b"event: message_start" in res.content
    (seen,) = scripted_model.requests
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert headers["x-api-key"] == REAL_KEY
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["anthropic-beta"] == "x-1"
    assert "cookie" not in headers and "authorization" not in headers
    assert credential not in json.dumps(seen)
    assert seen["body"] == body()


def test_it_speaks_oauth_upstream_when_that_is_the_operators_credential(
    scripted_model, running, monkeypatch
):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.setenv("CLAUDE_CODE_OAUTH_TOKEN", "sk-ant-oat01-operator-oauth")
    _, credential = running()
    res = post(credential, body(), HTTP_ANTHROPIC_BETA="fine-grained-tool-streaming-2025-05-14")
    assert res.status_code == 200, res.content
    headers = {k.lower(): v for k, v in scripted_model.requests[0]["headers"].items()}
    assert headers["authorization"] == "Bearer sk-ant-oat01-operator-oauth"
    assert "x-api-key" not in headers
    assert headers["anthropic-beta"].split(",") == [
        "fine-grained-tool-streaming-2025-05-14",
        "oauth-2025-04-20",
    ]


def test_a_call_is_metered_from_the_upstreams_usage(scripted_model, running):
    session, credential = running()
    payload = body("meter me " * 50)
    expected = scripted_usage(scripted_model, payload)
    assert post(credential, payload).status_code == 200
    call = ModelCall.objects.get(session=session)
    assert (call.input_tokens, call.output_tokens) == (
        expected.input_tokens,
        expected.output_tokens,
    )
    assert call.cost_usd == cost_usd("claude-sonnet-4-5", expected) > 0
    assert call.model == "claude-sonnet-4-5" and call.status == 200
    assert (call.agent_id, call.user_id) == (session.agent_id, session.agent.owner_id)
    session.refresh_from_db()
    assert session.total_cost_usd == call.cost_usd
    assert session.usage["input_tokens"] == expected.input_tokens
    assert session.usage["model_calls"] == 1


def test_a_non_streamed_answer_is_metered_too(scripted_model, running):
    session, credential = running()
    payload = body(stream=False)
    res = post(credential, payload)
    assert res.status_code == 200 and res.json()["type"] == "message"
    expected = scripted_usage(scripted_model, payload)
    call = ModelCall.objects.get(session=session)
    assert call.output_tokens == expected.output_tokens > 0


def test_an_upstream_error_is_relayed_and_costs_nothing(scripted_model, running):
    scripted_model.add_script(
        {"marker": "[[boom]]", "turns": [{"error": {"status": 529, "type": "overloaded_error"}}]}
    )
    session, credential = running()
    res = post(credential, body("[[boom]]"))
    assert res.status_code == 529
    assert res.json()["error"]["type"] == "overloaded_error"
    call = ModelCall.objects.get(session=session)
    assert (call.status, call.cost_usd) == (529, 0)


async def asgi_call(credential: str, payload: bytes, *, path: str = URL):
    """POST through the studio's own ASGI application (what daphne serves); the messages it
    sends back, each with the time it was sent (seconds since the call began)."""
    from studio.asgi import application

    started, sent = time.monotonic(), []
    url_path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": url_path,
        "raw_path": url_path.encode(),
        "query_string": query.encode(),
        "headers": [
            (b"x-api-key", credential.encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    messages = [{"type": "http.request", "body": payload, "more_body": False}]
    finished = asyncio.Event()

    async def receive():
        if messages:
            return messages.pop(0)
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append((time.monotonic() - started, message))
        if message["type"] == "http.response.body" and not message.get("more_body"):
            finished.set()

    await application(scope, receive, send)
    return sent


async def _metered(session):
    # Metered beside the end of the answer, not before it: it lands a moment later.
    for _ in range(100):
        call = await ModelCall.objects.filter(session=session).afirst()
        if call is not None:
            return call
        await asyncio.sleep(0.02)
    return None


@pytest.mark.asyncio
async def test_the_answer_streams_through_as_it_is_made(scripted_model, running):
    """Under the studio's ASGI server the first event reaches the client while the upstream
    is still pausing, and the headers, status and bytes are the upstream's."""
    from asgiref.sync import sync_to_async

    scripted_model.add_script(
        {
            "marker": "[[slow]]",
            "turns": [
                [
                    {"type": "text", "text": "first"},
                    {"type": "delay", "seconds": 1.5},
                    {"type": "text", "text": "second"},
                ]
            ],
        }
    )
    session, credential = await sync_to_async(running)()
    sent = await asgi_call(credential, json.dumps(body("[[slow]]")).encode())
    start = sent[0][1]
    assert start["status"] == 200
    assert (b"content-type", b"text/event-stream") in start["headers"]
    chunks = [(t, m["body"]) for t, m in sent[1:]]
    first_text = next(t for t, c in chunks if b"first" in c)
    second_text = next(t for t, c in chunks if b"second" in c)
    assert first_text < 1.0 < second_text, chunks
    assert b"".join(c for _, c in chunks).count(b"event: message_stop") == 1
    call = await _metered(session)
    assert call is not None and call.output_tokens > 0
    headers = {k.lower(): v for k, v in scripted_model.requests[0]["headers"].items()}
    assert headers["x-api-key"] == REAL_KEY


@pytest.mark.asyncio
async def test_the_asgi_path_refuses_as_the_view_does(scripted_model, running, settings):
    from asgiref.sync import sync_to_async

    settings.GATEWAY_MAX_REQUEST_BYTES = 2048
    _, credential = await sync_to_async(running)()
    sent = await asgi_call("studio-model-nope", b"{}")
    assert sent[0][1]["status"] == 401
    assert json.loads(sent[1][1]["body"])["error"]["type"] == "authentication_error"
    sent = await asgi_call(credential, b"x" * 4096)
    assert sent[0][1]["status"] == 413
    assert json.loads(sent[1][1]["body"])["error"]["type"] == "request_too_large"
    sent = await asgi_call(credential, b"{}", path="/api/internal/model/admin/")
    assert sent[0][1]["status"] == 404
    assert not scripted_model.requests


@pytest.mark.parametrize(
    "credential",
    [
        "",
        "sk-ant-test-model-key-0123456789",
        "studio-model-" + "0" * 32 + "-" + "0" * 64,
    ],
)
def test_it_refuses_what_is_not_a_gateway_credential(scripted_model, running, credential):
    running()
    res = post(credential, body())
    assert res.status_code == 401
    assert res.json()["type"] == "error"
    assert res.json()["error"]["type"] == "authentication_error"
    assert not scripted_model.requests


def test_it_refuses_the_ingest_and_runtime_tokens_of_the_same_session(scripted_model, running):
    session, _ = running()
    for other in (tokens.session_token(session.pk), tokens.runtime_token(session.sandbox_id)):
        assert post(other, body()).status_code == 401
        res = Client().post(
            URL, data="{}", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {other}"
        )
        assert res.status_code == 401
    assert not scripted_model.requests


def test_it_takes_the_credential_as_a_bearer_token_too(scripted_model, running):
    _, credential = running()
    res = Client().post(
        URL,
        data=json.dumps(body()),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {credential}",
    )
    assert res.status_code == 200


@pytest.mark.parametrize(
    "final", [SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.CANCELLED]
)
def test_a_credential_dies_with_its_session(scripted_model, running, final):
    session, credential = running()
    assert post(credential, body()).status_code == 200
    session.status = final
    session.save()
    res = post(credential, body())
    assert res.status_code == 401
    assert res.json()["error"]["message"] == "This credential's run has ended."
    assert res["x-should-retry"] == "false"
    assert len(scripted_model.requests) == 1


@pytest.mark.parametrize(
    "status", [SandboxStatus.STOPPED, SandboxStatus.FAILED, SandboxStatus.EXPIRED]
)
def test_a_credential_dies_with_its_sandbox(scripted_model, running, status):
    session, credential = running()
    session.sandbox.status = status
    session.sandbox.save()
    res = post(credential, body())
    assert res.status_code == 401
    assert "sandbox is stopped" in res.json()["error"]["message"]
    assert not scripted_model.requests


def test_a_call_past_a_per_run_budget_is_refused_naming_it(scripted_model, running):
    _, credential = running(budget_usd_per_run=Decimal("0.0001"))
    assert post(credential, body("x " * 400)).status_code == 200
    spent = ModelCall.objects.get().cost_usd
    assert spent >= Decimal("0.0001")
    res = post(credential, body())
    assert res.status_code == 429
    assert res["x-should-retry"] == "false"
    shown = spent.quantize(Decimal("0.0001"))
    assert res.json() == {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": f"Budget reached: the agent's per-run budget, spent ${shown} of $0.0001",
        },
    }
    assert len(scripted_model.requests) == 1
    assert ModelCall.objects.count() == 1


def test_it_answers_only_under_v1(scripted_model, running):
    _, credential = running()
    res = Client().get("/api/internal/model/admin/", HTTP_X_API_KEY=credential)
    assert res.status_code == 404 and res.json()["error"]["type"] == "not_found_error"


@pytest.mark.parametrize("path", ["v1/messages/batches", "v1/messages/batches/msgbatch_1/results"])
def test_it_refuses_message_batches_whose_cost_it_could_not_meter(scripted_model, running, path):
    _, credential = running()
    res = post(credential, body(), path=f"/api/internal/model/{path}")
    assert res.status_code == 403
    assert res.json()["error"]["type"] == "permission_error"
    assert not scripted_model.requests


def test_an_unreachable_upstream_is_a_502_in_the_apis_shape(running, monkeypatch):
    from studio.testing.servers import free_port

    monkeypatch.setenv("ANTHROPIC_API_KEY", REAL_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{free_port()}")
    session, credential = running()
    res = post(credential, body())
    assert res.status_code == 502
    assert res.json()["error"]["type"] == "api_error"
    assert REAL_KEY not in res.content.decode()
    assert ModelCall.objects.get(session=session).status == 502


@pytest.mark.asyncio
async def test_a_failure_of_the_studios_own_is_a_500_in_the_apis_shape(
    scripted_model, running, monkeypatch
):
    from asgiref.sync import sync_to_async
    from django.db import OperationalError

    import gateway.asgi

    def broken(**_):
        raise OperationalError("database is locked")

    _, credential = await sync_to_async(running)()
    monkeypatch.setattr(gateway.asgi, "gateway_grant", broken)
    sent = await asgi_call(credential, json.dumps(body()).encode())
    assert sent[0][1]["status"] == 500
    error = json.loads(sent[1][1]["body"])["error"]
    assert error == {"type": "api_error", "message": "The studio's model gateway failed."}
    assert not scripted_model.requests


@pytest.mark.asyncio
async def test_a_request_cut_off_before_its_body_ends_is_not_forwarded(scripted_model, running):
    from asgiref.sync import sync_to_async

    from studio.asgi import application

    _, credential = await sync_to_async(running)()
    messages = [
        {"type": "http.request", "body": b'{"model": "claude', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent = []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/internal/model/v1/messages",
        "query_string": b"",
        "headers": [(b"x-api-key", credential.encode())],
    }
    await application(scope, receive, send)
    assert sent == [] and not scripted_model.requests
