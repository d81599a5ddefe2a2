"""The WebSocket origin rule: browsers must come from our hosts; programs need no Origin."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from rest_framework.authtoken.models import Token

from studio.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def _open(session_id, headers):
    comm = WebsocketCommunicator(application, f"/ws/sessions/{session_id}/", headers=headers)
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


async def test_a_page_from_our_own_host_is_let_in(session_and_token, settings):
    session, key = session_and_token
    settings.ALLOWED_HOSTS = ["studio.example.com"]
    headers = [
        (b"authorization", f"Token {key}".encode()),
        (b"origin", b"https://studio.example.com"),
    ]
    connected, _, _ = await _open(session.pk, headers)
    assert connected
