"""Schemathesis against /api/schema/, in process: no 5xx, and every answer is what the schema
says (status code, content type, body shape), for valid and invalid input alike.

Requests carry a real user's token, and path parameters are that user's agent and session
(which has log lines), so requests get past the 404 and exercise the routes themselves.

Left out: deploy and execute start real sandboxes (a bubblewrap jail each) from a Celery
task; generating hundreds of them is a load test, not a contract test. Their validation
and ownership are covered by tests/abuse/test_authorization_matrix.py and
test_confinement.py. The sandbox actions (files, exec, packages, stop) are included: the
fuzzed agent has no sandbox, so they validate their input and then answer 404, never start one.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from conftest import client_for

EXCLUDED = ["agents_deploy", "agents_execute"]  # see the module docstring
MAX_EXAMPLES = 30
EXCLUDED_CHECKS = [positive_data_acceptance, negative_data_rejection]  # why: see below


@pytest.fixture
def studio_schema(db, settings, user):
    """The schema, loaded from the app itself through WSGI in this thread and transaction,
    as a signed-in user (the schema is not public)."""
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "localhost"]  # schemathesis's Host
    # The WSGI handler closes "old" connections at each request's end; in a test that is the
    # test's own transaction (Django's test client disconnects this the same way).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        token = client_for(user)._credentials["HTTP_AUTHORIZATION"]
        yield schemathesis.openapi.from_wsgi(
            "/api/schema/?format=json", WSGIHandler(), headers={"Authorization": token}
        )
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def world(user, make_agent):
    from agents.models import Secret, Session
    from logs.models import LogLine

    agent = make_agent(owner=user, name="fuzzed")
    secret = Secret(agent=agent, name="API_TOKEN")
    secret.set_value("fuzz-secret-value")
    secret.save()
    session = Session.objects.create(
        agent=agent, prompt="hi", status="completed", last_seq=3, usage={"input_tokens": 3}
    )
    LogLine.objects.bulk_create(
        LogLine(session=session, seq=i, kind="stdout", text=f"line {i}", ts=timezone.now())
        for i in range(1, 4)
    )
    token = client_for(user)._credentials["HTTP_AUTHORIZATION"]
    return {"agent": agent, "session": session, "user": user, "auth": token}


schema = schemathesis.pytest.from_fixture("studio_schema")


@schema.exclude(operation_id=EXCLUDED).parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_keeps_its_schema(case, world, make_agent):
    params = case.path_parameters or {}
    if "session_id" in params:
        params["session_id"] = str(world["session"].pk)
    if "agent_id" in params:
        params["agent_id"] = str(world["agent"].pk)
    if "id" in params:
        # DELETE takes an agent of its own, so the others keep theirs.
        target = make_agent(owner=world["user"]) if case.method == "DELETE" else world["agent"]
        params["id"] = str(target.pk)
    case.call_and_validate(
        headers={"Authorization": world["auth"]}, excluded_checks=EXCLUDED_CHECKS
    )


# The checks left out, and why:
# - positive_data_acceptance (schema-valid input must be accepted): OpenAPI 3.0 cannot say
#   what the API checks beyond types and lengths (variable names and reserved prefixes,
#   paths inside /workspace, package-name grammar), so "valid" inputs are rightly refused.
# - negative_data_rejection (schema-invalid input must be refused): the API ignores query
#   parameters it does not know, as HTTP APIs do, and the path parameters are replaced with
#   real ids, which makes "invalid" cases valid. What it would prove for the parameters the
#   API does read is asserted below: a bad query number is a 400, never ignored, never a 5xx.
BAD_QUERIES = [
    ("/api/agents/", {"limit": "abc"}),
    ("/api/agents/", {"limit": "0"}),
    ("/api/agents/", {"offset": "-1"}),
    ("/api/agents/", {"offset": str(2**64)}),
    ("/api/sessions/", {"offset": "null"}),
    ("/api/sessions/", {"agent": "not-a-uuid"}),
    ("/api/sessions/{session}/logs", {"after": str(10**30)}),
    ("/api/sessions/{session}/logs", {"limit": "-5"}),
    ("/api/agents/{agent}/logs", {"offset": "1518421532968654008804704256"}),
    ("/api/agents/{agent}/logs", {"limit": "1.5"}),
]


@pytest.mark.django_db
def test_bad_query_numbers_are_400(api, world):
    for url, query in BAD_QUERIES:
        url = url.format(agent=world["agent"].pk, session=world["session"].pk)
        res = api.get(url, query)
        assert res.status_code == 400, (url, query, res.status_code)
        assert res.json()["error"] == "ValidationError"
