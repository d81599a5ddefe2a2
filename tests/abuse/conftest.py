"""Fixtures for the abuse suite: one user's rows to attack, and a way to see that nothing moved."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.utils import timezone


@pytest.fixture(autouse=True)
def plain_http(settings):
    """Production settings redirect to HTTPS; the test clients speak plain HTTP."""
    settings.SECURE_SSL_REDIRECT = False


@pytest.fixture
def victim(user, make_agent):
    """alice's agent (with a secret and a skill), a ready sandbox row, a session with lines."""
    from agents.models import Secret, Session
    from logs.models import LogLine
    from sandboxes.models import Sandbox

    agent = make_agent(owner=user, name="alice-agent", env={"PLAIN": "value"})
    agent.skills.create(name="greet", description="Say hi", body="Say hi.")
    secret = Secret(agent=agent, name="API_TOKEN")
    secret.set_value("alice-secret-value-0001")
    secret.save()
    # A row only: no process stands behind it, so nothing can reach a real sandbox.
    sandbox = Sandbox.objects.create(
        agent=agent, backend="local", external_id="abuse-fake", status="ready"
    )
    session = Session.objects.create(agent=agent, sandbox=sandbox, prompt="hello", status="running")
    LogLine.objects.bulk_create(
        LogLine(session=session, seq=i, kind="stdout", text=f"line {i}", ts=timezone.now())
        for i in range(1, 4)
    )
    Session.objects.filter(pk=session.pk).update(last_seq=3)
    return {"agent": agent, "sandbox": sandbox, "session": session}


def snapshot() -> dict[str, list]:
    """Every row of every model, as plain values: equal snapshots mean nothing changed."""
    return {
        model._meta.label: sorted((repr(row) for row in model.objects.values_list()), key=str)
        for model in apps.get_models()
    }


def assert_unchanged(before: dict, what) -> None:
    after = snapshot()
    changed = {label for label in before if before[label] != after[label]}
    assert not changed, f"{what} changed {sorted(changed)}"


def assert_error_body(res, status: int, what) -> dict:
    assert res.status_code == status, (what, res.status_code, res.content[:300])
    assert res.get("Content-Type", "").startswith("application/json"), (what, res.content[:300])
    try:
        body = res.json()
    except ValueError:
        raise AssertionError(f"{what}: not JSON: {res.content[:300]!r}") from None
    assert set(body) <= {"error", "message", "details"}, (what, body)
    assert isinstance(body["error"], str) and body["error"], (what, body)
    assert isinstance(body["message"], str) and body["message"], (what, body)
    return body
