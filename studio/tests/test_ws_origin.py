"""The WebSocket origin rule: browsers must come from this site (scheme, host and port);
programs need no Origin."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from rest_framework.authtoken.models import Token

from studio.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def _open(session_id, headers, scheme="ws"):
    comm = WebsocketCommunicator(application, f"/ws/sessions/{session_id}/", headers=headers)
    comm.scope["scheme"] = scheme
    connected, code = await comm.connect(timeout=5)
    first = await comm.receive_json_from(timeout=5) if connected else None
    await comm.disconnect()
    await sync_to_async(connections.close_all)()
    return connected, code, first


@pytest.fixture
def session_and_token(make_session, user):
    return make_session(), Token.objects.get_or_create(user=user)[0].key


async def test_a_program_with_a_token_and_no_origin_is_let_in(session_and_token):
    session, key = session_and_token
    connected, _, first = await _open(session.pk, [(b"authorization", f"Token {key}".encode())])
    assert connected
    assert first["type"] == "session"


async def test_a_page_from_another_site_is_refused(session_and_token):
    session, key = session_and_token
    headers = [
        (b"authorization", f"Token {key}".encode()),
        (b"origin", b"https://evil.example"),
    ]
    connected, _, _ = await _open(session.pk, headers)
    assert not connected


def _browser(key, origin, host="studio.example.com"):
    return [
        (b"authorization", f"Token {key}".encode()),
        (b"host", host.encode()),
        (b"origin", origin.encode()),
    ]


@pytest.fixture
def behind_tls(settings):
    settings.ALLOWED_HOSTS = ["studio.example.com"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.CSRF_TRUSTED_ORIGINS = []


async def test_a_page_from_our_own_host_is_let_in(session_and_token, behind_tls):
    session, key = session_and_token
    connected, _, _ = await _open(session.pk, _browser(key, "https://studio.example.com"), "wss")
    assert connected


async def test_a_page_behind_the_tls_proxy_is_let_in(session_and_token, behind_tls):
    session, key = session_and_token
    headers = [*_browser(key, "https://studio.example.com"), (b"x-forwarded-proto", b"https")]
    connected, _, _ = await _open(session.pk, headers)
    assert connected


async def test_a_local_studio_on_its_port_is_let_in(session_and_token, settings):
    session, key = session_and_token
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    headers = _browser(key, "http://127.0.0.1:8000", host="127.0.0.1:8000")
    connected, _, _ = await _open(session.pk, headers)
    assert connected


@pytest.mark.parametrize(
    "origin",
    [
        "https://studio.example.com:8443",  # same host, another port
        "http://studio.example.com",  # same host, plain HTTP on a TLS site
        "https://studio.example.com.evil.example",
        "https://evil.studio.example.com",
        "null",  # sandboxed iframes, file: pages
    ],
)
async def test_it_refuses_an_origin_of_another_port_scheme_or_host(
    session_and_token, behind_tls, origin
):
    session, key = session_and_token
    connected, _, _ = await _open(session.pk, _browser(key, origin), "wss")
    assert not connected


async def test_it_refuses_another_port_of_a_local_studio(session_and_token, settings):
    session, key = session_and_token
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    headers = _browser(key, "http://127.0.0.1:9999", host="127.0.0.1:8000")
    connected, _, _ = await _open(session.pk, headers)
    assert not connected


async def test_it_refuses_a_rebound_host_that_is_not_allowed(session_and_token, behind_tls):
    session, key = session_and_token
    headers = _browser(key, "https://rebound.evil.example", host="rebound.evil.example")
    connected, _, _ = await _open(session.pk, headers, "wss")
    assert not connected


@pytest.mark.parametrize(
    ("trusted", "origin", "allowed"),
    [
        ("https://console.example.com", "https://console.example.com", True),
        ("https://console.example.com", "https://console.example.com:444", False),
        ("https://console.example.com", "http://console.example.com", False),
        ("https://*.example.org", "https://a.example.org", True),
        ("https://*.example.org", "http://a.example.org", False),
        ("https://*.example.org", "https://a.example.org.evil.example", False),
    ],
)
async def test_csrf_trusted_origins_are_matched_with_their_scheme_and_port(
    session_and_token, behind_tls, settings, trusted, origin, allowed
):
    session, key = session_and_token
    settings.CSRF_TRUSTED_ORIGINS = [trusted]
    connected, _, _ = await _open(session.pk, _browser(key, origin), "wss")
    assert connected is allowed
