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
