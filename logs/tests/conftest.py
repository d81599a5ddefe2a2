"""Helpers for the logs tests: lines, batches, and posting them as a sandbox would."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from studio.tokens import session_token

APPEND_URL = "/api/internal/logs/append"


def line(seq: int, kind: str = "stdout", text: str | None = None, data=None, **extra) -> dict:
    body = {
        "seq": seq,
        "kind": kind,
        "text": f"line {seq}" if text is None else text,
        "data": data,
        "ts": extra.pop("ts", "2026-01-01T00:00:00.000Z"),
    }
    return {**body, **extra}


def lines(first: int, last: int, **kwargs) -> list[dict]:
    return [line(seq, **kwargs) for seq in range(first, last + 1)]


@pytest.fixture(autouse=True)
def plain_http(settings):
    """Production settings redirect to HTTPS; the test client speaks plain HTTP."""
    settings.SECURE_SSL_REDIRECT = False


@pytest.fixture
def append(db):
    """POST a batch for a session with its token; ``token=`` / ``body=`` override."""
    client = APIClient()

    def post(session, batch: list[dict] | None = None, *, token=None, body=None, status=None):
        if body is None:
            body = {"session_id": str(session.pk), "lines": batch or []}
            if status is not None:
                body["status"] = status
        token = session_token(session.pk) if token is None else token
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        return client.post(APPEND_URL, body, format="json", **headers)

    return post
