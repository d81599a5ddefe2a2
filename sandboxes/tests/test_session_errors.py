"""A session's error is shown in the API, the pages and admin: it is masked like a log line."""

from __future__ import annotations

import base64

import pytest

from agents.models import Secret, Session
from sandboxes.services.sessions import session_fail

pytestmark = pytest.mark.django_db

VALUE = "s3cr3t-value-for-error-test"


def test_it_masks_secrets_in_a_failed_sessions_error(agent):
    secret = Secret(agent=agent, name="API_TOKEN")
    secret.set_value(VALUE)
    secret.save()
    session = Session.objects.create(agent=agent, prompt="go", status="running")
    encoded = base64.b64encode(VALUE.encode()).decode()

    session_fail(session=session, message=f"The runtime refused the run: {VALUE} {encoded}")

    session.refresh_from_db()
    assert session.status == "failed"
    assert VALUE not in session.error and encoded not in session.error
    assert "***" in session.error
