"""Hostile JSON on every route that reads a body: a 400 naming the limit, never a 500.

The standard library's JSON parser recurses, so a body nested a hundred thousand levels deep
was a RecursionError (a 500, with the debug page in embedded mode) on any route. The ingest
has its own reader (tests/abuse/test_sandbox_reports.py); these are the user-facing routes.
"""

from __future__ import annotations

import pytest

from logs.jsonio import MAX_DEPTH
from tests.abuse.conftest import assert_error_body, assert_unchanged, snapshot


def routes(victim) -> list[tuple[str, str]]:
    """The routes that read a JSON body (deploy, stop and cancel never read theirs)."""
    agent = victim["agent"].pk
    return [
        ("post", "/api/agents/"),
        ("put", f"/api/agents/{agent}/"),
        ("patch", f"/api/agents/{agent}/"),
        ("post", f"/api/agents/{agent}/execute"),
        ("post", f"/api/agents/{agent}/sandbox/files"),
        ("post", f"/api/agents/{agent}/sandbox/exec"),
        ("post", f"/api/agents/{agent}/sandbox/packages"),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 900, 100_000])
def test_deep_json_is_a_400_naming_the_limit_on_every_route(api, victim, depth):
    body = '{"name": ' + "[" * depth + "]" * depth + "}"
    before = snapshot()
    for method, url in routes(victim):
        res = getattr(api, method)(url, body, content_type="application/json")
        error = assert_error_body(res, 400, (method, url))
        assert str(MAX_DEPTH) in error["message"], (method, url, error)
        assert_unchanged(before, (method, url))
