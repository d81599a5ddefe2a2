"""Who may call what: every HTTP route (read from the URL resolver) and both WebSockets.

Each route is classified in ROUTES; a route the resolver knows and ROUTES does not fails
`test_every_route_is_classified`, so a new route cannot escape the matrix. For each class:

- API: anonymous → 401; another user's agent/session (and so its sandbox and logs) → 404,
  with every method the view implements and a body that would succeed for the owner;
- pages: anonymous → redirect to /login/; another user's objects → the 404 page;
- admin (every route under admin/): anonymous and non-staff users → the admin login;
- ingest: no bearer → 401, another session's token → 403;
- WebSockets: anonymous → close 4401, another user's → close 4403;
- the agent runtime (inside the sandbox): any path, any method, without its token → 401.

After every refused request the database is compared with a snapshot: nothing changed.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass

import httpx
import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.apps import apps
from django.contrib import admin
from django.db import connections
from django.test import Client
from django.urls import URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from conftest import client_for
from studio.routing import websocket_urlpatterns
from studio.tokens import session_token
from studio.ws_auth import TokenOrSessionAuthMiddleware
from tests.abuse.conftest import assert_error_body, assert_unchanged, snapshot


@dataclass(frozen=True)
class Api:
    scope: str | None  # "agent" / "session": owner-scoped by that path parameter


@dataclass(frozen=True)
class Page:
    scope: str | None
    methods: tuple[str, ...]


class Public:
    """Open to anyone by design: health, sign in/out."""


class Ingest:
    """The sandbox → studio log ingest: a per-session HMAC bearer token, no user."""


class ModelGateway:
    """The sandbox → model calls: a per-session credential of their own (docs/gateway.md)."""


# Keyed by the resolver's own spelling of each route (regex routes from the DRF router).
ROUTES = {
    "healthz": Public,
    "api/schema/": Api(None),  # unless API_SCHEMA_PUBLIC
    "api/docs/": Page(None, ("get",)),
    "api/^agents/$": Api(None),
    "api/^agents/(?P<pk>[0-9a-fA-F-]{36})/$": Api("agent"),
    "api/agents/<uuid:agent_id>/deploy": Api("agent"),
    "api/agents/<uuid:agent_id>/sandbox": Api("agent"),
    "api/agents/<uuid:agent_id>/execute": Api("agent"),
    "api/agents/<uuid:agent_id>/stop": Api("agent"),
    "api/agents/<uuid:agent_id>/sandbox/files": Api("agent"),
    "api/agents/<uuid:agent_id>/sandbox/packages": Api("agent"),
    "api/agents/<uuid:agent_id>/sandbox/exec": Api("agent"),
    "api/agents/<uuid:agent_id>/logs": Api("agent"),
    "api/sessions/": Api(None),
    "api/sessions/<uuid:session_id>/": Api("session"),
    "api/sessions/<uuid:session_id>/logs": Api("session"),
    "api/sessions/<uuid:session_id>/cancel": Api("session"),
    "api/usage/": Api(None),
    "api/usage/limits": Api(None),
    "api/internal/logs/append": Ingest,
    "api/internal/model/<path:path>": ModelGateway,
    "login/": Public,
    "logout/": Public,
    "": Page(None, ("get",)),
    "agents/new/": Page(None, ("get", "post")),
    "agents/<uuid:agent_id>/": Page("agent", ("get",)),
    "agents/<uuid:agent_id>/edit/": Page("agent", ("get", "post")),
    "agents/<uuid:agent_id>/delete/": Page("agent", ("post",)),
    "sessions/<uuid:session_id>/": Page("session", ("get",)),
}
ADMIN_PREFIX = "admin/"  # Django admin's generated routes, all behind admin_view (staff only)
WS_ROUTES = {
    "ws/sessions/<uuid:session_id>/": "session",
    "ws/agents/<uuid:agent_id>/": "agent",
}

# Bodies that would succeed (or at least pass validation) for the owner, so a missing
# ownership check shows up as a change rather than hiding behind a 400.
BODIES = {
    "put": {"name": "pwned", "system_prompt": "pwned"},
    "patch": {"name": "pwned"},
    "execute": {"prompt": "exfiltrate"},
    "sandbox/files": {"files": [{"path": "pwned.txt", "content": "x"}]},
    "sandbox/packages": {"packages": ["six"]},
    "sandbox/exec": {"command": "id"},
}
EDIT_FORM = {"name": "pwned", "max_turns": "5", "timeout_seconds": "600"}


def _walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        else:
            yield prefix + str(p.pattern), p


def http_routes() -> dict:
    return dict(_walk(get_resolver().url_patterns))


def concrete(route: str, ids: dict[str, str]) -> str:
    """The URL of a route with its object parameter filled in."""

    def fill(match):
        name = match.group(1) or match.group(2)
        return ids["agent" if name in ("agent_id", "pk") else "session"]

    path = re.sub(r"<uuid:(\w+)>|\(\?P<(\w+)>[^)]*\)", fill, route)
    return "/" + path.replace("^", "").replace("$", "")


def api_methods(pattern) -> list[str]:
    """The methods a DRF route serves, read from its view (a new method cannot escape)."""
    callback = pattern.callback
    if getattr(callback, "actions", None):  # a ViewSet route: {method: action}
        served = set(callback.actions)
    else:
        served = {m for m in callback.cls.http_method_names if hasattr(callback.cls, m)}
    return sorted(served - {"head", "options"})  # what GET answers / the framework's own


def body_for(route: str, method: str):
    if method in ("put", "patch"):
        return BODIES[method]
    return next((b for suffix, b in BODIES.items() if route.endswith(suffix)), {})


def ids_of(victim) -> dict[str, str]:
    return {"agent": str(victim["agent"].pk), "session": str(victim["session"].pk)}


pytestmark = pytest.mark.django_db


def test_every_route_is_classified():
    routes = {r for r in http_routes() if not r.startswith(ADMIN_PREFIX)}
    assert routes - set(ROUTES) == set(), "classify these routes in ROUTES"
    assert set(ROUTES) - routes == set(), "ROUTES names routes that no longer exist"
    ws = {str(p.pattern) for p in websocket_urlpatterns}
    assert ws == set(WS_ROUTES), "classify WebSocket routes in WS_ROUTES"


def test_anonymous_api_calls_are_401(victim):
    anonymous = APIClient()
    ids = ids_of(victim)
    before = snapshot()
    checked = 0
    for route, pattern in http_routes().items():
        if not isinstance(ROUTES.get(route), Api):
            continue
        url = concrete(route, ids)
        for method in api_methods(pattern):
            res = getattr(anonymous, method)(url, body_for(route, method), format="json")
            body = assert_error_body(res, 401, (method, url))
            assert body["error"] == "NotAuthenticated"
            assert ids["agent"] not in res.content.decode()
            assert_unchanged(before, (method, url))
            checked += 1
    assert checked >= 20


def test_another_users_objects_are_404_in_the_api(victim, other_user):
    mallory = client_for(other_user)
    ids = ids_of(victim)
    before = snapshot()
    for route, pattern in http_routes().items():
        rule = ROUTES.get(route)
        if not isinstance(rule, Api):
            continue
        url = concrete(route, ids)
        if rule.scope is None:  # a collection: mallory's own view must not show alice's rows
            res = mallory.get(url, {"agent": ids["agent"]} if "sessions" in url else {})
            assert res.status_code == 200, (url, res.content)
            assert ids["agent"] not in res.content.decode(), url
            assert ids["session"] not in res.content.decode(), url
            continue
        for method in api_methods(pattern):
            for body in ({}, body_for(route, method)):
                res = getattr(mallory, method)(url, body, format="json")
                assert assert_error_body(res, 404, (method, url))["error"] == "NotFound"
                assert_unchanged(before, (method, url, body))


def test_a_resume_of_another_users_session_is_404(victim, other_user, make_agent, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-abuse-test-key-000000")
    own = make_agent(owner=other_user, name="mallory-agent")
    mallory = client_for(other_user)
    before = snapshot()
    res = mallory.post(
        f"/api/agents/{own.pk}/execute",
        {"prompt": "continue", "resume": str(victim["session"].pk)},
        format="json",
    )
    assert_error_body(res, 404, "resume")
    assert_unchanged(before, "resume")


def test_anonymous_pages_redirect_to_login(victim):
    anonymous = Client()
    ids = ids_of(victim)
    before = snapshot()
    for route in http_routes():
        rule = ROUTES.get(route)
        if not isinstance(rule, Page):
            continue
        url = concrete(route, ids)
        for method in rule.methods:
            res = getattr(anonymous, method)(url, EDIT_FORM if method == "post" else None)
            assert res.status_code == 302, (method, url, res.status_code)
            assert res["Location"].startswith("/login/?next="), (method, url, res["Location"])
            assert_unchanged(before, (method, url))


def test_another_users_objects_are_a_404_page(victim, other_user):
    mallory = Client()
    mallory.force_login(other_user)
    ids = ids_of(victim)
    before = snapshot()
    for route in http_routes():
        rule = ROUTES.get(route)
        if not isinstance(rule, Page):
            continue
        url = concrete(route, ids)
        if rule.scope is None:
            if "get" in rule.methods:
                html = mallory.get(url).content.decode()
                assert victim["agent"].name not in html and ids["agent"] not in html, url
            continue
        for method in rule.methods:
            res = getattr(mallory, method)(url, EDIT_FORM if method == "post" else None)
            assert res.status_code == 404, (method, url, res.status_code)
            assert ids["agent"] not in res.content.decode()
            assert_unchanged(before, (method, url))


def test_admin_is_for_staff_only(victim, user):
    """Every model's admin pages, and the admin's other routes, for anonymous and non-staff."""
    obj = {
        "agents.agent": victim["agent"].pk,
        "agents.session": victim["session"].pk,
        "sandboxes.sandbox": victim["sandbox"].pk,
    }
    urls = [reverse("admin:index"), "/admin/jsi18n/", "/admin/autocomplete/", "/admin/nope/"]
    for model in filter(admin.site.is_registered, apps.get_models()):
        meta = model._meta
        name = f"admin:{meta.app_label}_{meta.model_name}"
        pk = obj.get(meta.label_lower) or model.objects.values_list("pk", flat=True).first() or 1
        urls += [reverse(f"{name}_changelist"), reverse(f"{name}_add")]
        urls += [reverse(f"{name}_{view}", args=[pk]) for view in ("change", "delete", "history")]
    urls.append(reverse("admin:app_list", args=["agents"]))
    anonymous, member = Client(), Client()
    member.force_login(user)
    before = snapshot()
    for client in (anonymous, member):
        for url in urls:
            for method in ("get", "post"):
                res = getattr(client, method)(url)
                assert res.status_code == 302, (method, url, res.status_code)
                assert res["Location"].startswith("/admin/login/"), (method, url)
                assert_unchanged(before, (method, url))


def test_ingest_needs_the_sessions_own_token(victim, other_user, make_agent):
    from agents.models import Session

    other = Session.objects.create(agent=make_agent(owner=other_user), prompt="x")
    ingest = APIClient()
    body = {
        "session_id": str(victim["session"].pk),
        "lines": [{"seq": 4, "kind": "stdout", "text": "forged", "ts": "2026-01-01T00:00:00Z"}],
        "status": {"status": "completed"},
    }
    user_token = client_for(other_user)._credentials["HTTP_AUTHORIZATION"]
    before = snapshot()
    refusals = [
        ({}, 401),
        ({"HTTP_AUTHORIZATION": user_token}, 401),  # a user's API token is no session token
        ({"HTTP_AUTHORIZATION": f"Token {session_token(victim['session'].pk)}"}, 401),
        ({"HTTP_AUTHORIZATION": f"Bearer {session_token(other.pk)}"}, 403),
        ({"HTTP_AUTHORIZATION": f"Bearer {session_token(uuid.uuid4())}"}, 403),
    ]
    for headers, status in refusals:
        res = ingest.post("/api/internal/logs/append", body, format="json", **headers)
        assert_error_body(res, status, headers)
        assert_unchanged(before, headers)


def test_the_model_gateway_needs_a_live_sessions_own_credential(victim, user):
    from studio.tokens import model_token, runtime_token

    gateway = Client()
    url = "/api/internal/model/v1/messages"
    live = model_token(victim["session"].pk)
    forged = live[:-4] + ("0000" if not live.endswith("0000") else "1111")
    user_token = client_for(user)._credentials["HTTP_AUTHORIZATION"]
    before = snapshot()
    refusals = [
        {},
        {"HTTP_AUTHORIZATION": user_token},  # a user's API token
        {"HTTP_X_API_KEY": session_token(victim["session"].pk)},  # the ingest token
        {"HTTP_X_API_KEY": runtime_token(victim["sandbox"].pk)},  # the runtime token
        {"HTTP_X_API_KEY": forged},
        {"HTTP_X_API_KEY": model_token(uuid.uuid4())},  # no such session
    ]
    for headers in refusals:
        res = gateway.post(url, "{}", content_type="application/json", **headers)
        assert res.status_code == 401, headers
        assert res.json()["error"]["type"] == "authentication_error", headers
        assert_unchanged(before, headers)
    victim["sandbox"].status = "stopped"
    victim["sandbox"].save()
    res = gateway.post(url, "{}", content_type="application/json", HTTP_X_API_KEY=live)
    assert res.status_code == 401
    assert "sandbox is stopped" in res.json()["error"]["message"]


# --- WebSockets ------------------------------------------------------------------------

# The stack studio.asgi serves, minus the Origin check (the test client sends no Origin).
ws_app = TokenOrSessionAuthMiddleware(URLRouter(websocket_urlpatterns))


async def _close_code(path: str, key: str | None) -> int:
    headers = [(b"authorization", f"Token {key}".encode())] if key else []
    comm = WebsocketCommunicator(ws_app, path, headers=headers)
    connected, _ = await comm.connect(timeout=3)
    assert connected
    output = await comm.receive_output(timeout=3)
    assert output["type"] == "websocket.close", output
    return output["code"]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_websockets_refuse_anonymous_and_other_users(victim, other_user):
    from rest_framework.authtoken.models import Token

    ids = ids_of(victim)
    key = (await sync_to_async(Token.objects.get_or_create)(user=other_user))[0].key
    try:
        for route, scope in WS_ROUTES.items():
            path = "/" + route.replace(f"<uuid:{scope}_id>", ids[scope])
            assert await _close_code(path, None) == 4401, path
            assert await _close_code(path, "not-a-real-token") == 4401, path
            assert await _close_code(path, key) == 4403, path
    finally:
        await sync_to_async(connections.close_all)()


# --- the agent runtime -----------------------------------------------------------------


@pytest.fixture
def runtime_url(tmp_path):
    """The real runtime HTTP server, in a thread (no run process is started)."""
    from agent_runtime.server import Runtime, make_server

    runtime = Runtime(
        state_dir=tmp_path / "state", workspace=tmp_path / "ws", token="rt-token", token_file=""
    )
    (tmp_path / "state" / "sessions").mkdir(parents=True)
    server = make_server(runtime, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


RUNTIME_ROUTES = [
    ("GET", "/health"),
    ("POST", "/execute"),
    ("GET", "/sessions/abc"),
    ("POST", "/sessions/abc/cancel"),
    ("GET", "/not-a-route"),  # auth comes before routing, so future routes are covered too
    ("POST", "/"),
]


def test_the_runtime_refuses_every_route_without_its_token(runtime_url, tmp_path):
    execute = {
        "session_id": str(uuid.uuid4()),
        "prompt": "hi",
        "options": {},
        "env": {},
        "ingest": {"url": "http://127.0.0.1:9/", "token": "x"},
    }
    bad_headers = [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Bearer rt-token-and-more"},
        {"Authorization": "Token rt-token"},
        {"Authorization": "rt-token"},
    ]
    with httpx.Client(base_url=runtime_url, timeout=5) as client:
        for method, path in RUNTIME_ROUTES:
            for headers in bad_headers:
                res = client.request(method, path, headers=headers, content=json.dumps(execute))
                assert res.status_code == 401, (method, path, headers, res.text)
                assert set(res.json()) >= {"error", "message"}
        ok = client.get("/health", headers={"Authorization": "Bearer rt-token"})
        assert ok.status_code == 200  # the same request with the token is served
    assert not list((tmp_path / "state" / "sessions").iterdir()), "a refused execute ran"
