"""Rows for gateway tests: a session running in a live sandbox, and its credential."""

from __future__ import annotations

import pytest

from studio import tokens


@pytest.fixture
def running(make_agent):
    """A factory: (session, credential) for a running session of a new agent in a ready
    sandbox. Agent fields (budgets, model) are passed through."""
    from agents.models import Session, SessionStatus
    from sandboxes.models import Sandbox, SandboxStatus

    def make(**agent_fields):
        agent = make_agent(**agent_fields)
        sandbox = Sandbox.objects.create(agent=agent, backend="local", status=SandboxStatus.READY)
        session = Session.objects.create(
            agent=agent, sandbox=sandbox, prompt="hi", status=SessionStatus.RUNNING
        )
        return session, tokens.model_token(session.pk)

    return make


def scripted_usage(scripted_model, body: dict):
    """The usage the scripted model reports for a request body, worked out from its own
    event generator (independently of the gateway's meter)."""
    from agent_runtime.scripted_model import _estimate_tokens, sse_events
    from gateway.pricing import Usage

    events = [
        e
        for e in sse_events(
            scripted_model.plan(body), body.get("model") or "", _estimate_tokens(body["messages"])
        )
        if isinstance(e, dict)
    ]
    start = events[0]["message"]["usage"]
    delta = next(e for e in events if e["type"] == "message_delta")["usage"]
    return Usage(input_tokens=start["input_tokens"], output_tokens=delta["output_tokens"])
