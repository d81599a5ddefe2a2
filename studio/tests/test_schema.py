from __future__ import annotations

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert out.read_text().startswith("openapi: 3")


# The REST API's routes (the README's API, browsable at /api/docs/): the schema must document
# each route and method.
API_ROUTES = {
    "/api/agents/": {"get", "post"},
    "/api/agents/{id}/": {"get", "put", "patch", "delete"},
    "/api/agents/{agent_id}/deploy": {"post"},
    "/api/agents/{agent_id}/sandbox": {"get"},
    "/api/agents/{agent_id}/execute": {"post"},
    "/api/agents/{agent_id}/stop": {"post"},
    "/api/agents/{agent_id}/sandbox/files": {"get", "post"},
    "/api/agents/{agent_id}/sandbox/packages": {"post"},
    "/api/agents/{agent_id}/sandbox/exec": {"post"},
    "/api/sessions/": {"get"},
    "/api/sessions/{session_id}/": {"get"},
    "/api/usage/": {"get"},
    "/api/sessions/{session_id}/cancel": {"post"},
    "/api/sessions/{session_id}/logs": {"get"},
    "/api/agents/{agent_id}/logs": {"get"},
    "/api/internal/logs/append": {"post"},
}


def test_schema_lists_every_api_route(api):
    paths = api.get("/api/schema/?format=json").json()["paths"]
    for route, methods in API_ROUTES.items():
        assert route in paths, f"{route} is not documented"
        assert methods <= set(paths[route]), f"{route}: {methods - set(paths[route])} missing"


def test_swagger_ui_is_served_without_a_cdn(api):
    page = api.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/" in page
    assert "cdn" not in page.lower()


@pytest.mark.parametrize("query", ["?format=json", ""])
def test_it_refuses_the_schema_to_anonymous_callers(client, query):
    answer = client.get("/api/schema/" + query)
    assert answer.status_code == 401
    assert answer["Content-Type"] == "application/json"
    assert answer.json()["error"] == "NotAuthenticated"
    assert "paths" not in answer.json()


def test_it_sends_an_anonymous_browser_from_the_docs_to_sign_in(client):
    answer = client.get("/api/docs/")
    assert answer.status_code == 302
    assert answer["Location"] == "/login/?next=/api/docs/"


def test_a_signed_in_browser_reads_the_schema_and_docs(client, user):
    client.force_login(user)
    assert client.get("/api/schema/?format=json").json()["openapi"].startswith("3.")
    assert client.get("/api/docs/").status_code == 200


def test_api_schema_public_opens_both_to_anyone(client, settings):
    settings.API_SCHEMA_PUBLIC = True
    assert client.get("/api/schema/?format=json").json()["openapi"].startswith("3.")
    assert client.get("/api/docs/").status_code == 200
