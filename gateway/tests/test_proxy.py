"""The gateway forwards a sandbox's call with the operator's credential, streams the answer
through unchanged, meters it, and refuses what it must in the Messages API's own shape."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
from django.test import AsyncClient, Client

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


def post(credential: str, payload: dict, **headers):
    return Client().post(
        URL,
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


@pytest.mark.asyncio
async def test_the_answer_streams_through_as_it_is_made(scripted_model, running):
    """Under ASGI the first event reaches the client while the upstream is still pausing."""
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
    started = time.monotonic()
    res = await AsyncClient().post(
        URL,
        data=json.dumps(body("[[slow]]")),
        content_type="application/json",
        headers={"x-api-key": credential},
    )
    assert res.status_code == 200
    arrivals = []
    async for chunk in res.streaming_content:
        arrivals.append((time.monotonic() - started, chunk))
    first_text = next(t for t, c in arrivals if b"first" in c)
    second_text = next(t for t, c in arrivals if b"second" in c)
    assert first_text < 1.0 < second_text, arrivals
    call = await ModelCall.objects.aget(session=session)
    assert call.output_tokens > 0


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
