from __future__ import annotations

import uuid

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db import connections
from rest_framework.authtoken.models import Token

from agents.models import Secret, SessionStatus
from logs import consumers, events
from logs.models import LogLine
from logs.tests.conftest import line, lines
from studio.routing import websocket_urlpatterns
from studio.ws_auth import TokenOrSessionAuthMiddleware

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

# The stack studio.asgi serves, minus the Origin check (the test client sends no Origin).
application = TokenOrSessionAuthMiddleware(URLRouter(websocket_urlpatterns))


@pytest.fixture(autouse=True)
def quiet_heartbeats(settings):
    settings.LOGS_WS_HEARTBEAT_SECONDS = 60
    settings.LOGS_WS_POLL_SECONDS = 0.1


@pytest_asyncio.fixture(autouse=True)
async def close_thread_connections():
    """Close what database_sync_to_async opened in its worker thread (CONN_MAX_AGE keeps
    them), so the test database can be dropped at the end."""
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def token(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


@pytest.fixture
def connect(token):
    async def open_(path: str, key: str | None = token):
        headers = [(b"authorization", f"Token {key}".encode())] if key else []
        comm = WebsocketCommunicator(application, path, headers=headers)
        connected, _ = await comm.connect(timeout=3)
        assert connected
        return comm

    return open_


async def receive(comm, timeout: float = 3) -> dict:
    """The next message that is not a heartbeat."""
    while True:
        message = await comm.receive_json_from(timeout=timeout)
        if message["type"] != "heartbeat":
            return message


async def receive_seqs(comm, count: int) -> list[int]:
    """Seqs from `lines` messages until `count` arrived; fails on a duplicate or disorder."""
    seqs: list[int] = []
    while len(seqs) < count:
        message = await receive(comm)
        if message["type"] == "lines":
            seqs += [x["seq"] for x in message["lines"]]
    assert seqs == sorted(set(seqs)), seqs
    return seqs


async def assert_silent(comm):
    assert await comm.receive_nothing(timeout=0.3)


async def assert_closed_with(comm, code: int):
    output = await comm.receive_output(timeout=3)
    assert output == {"type": "websocket.close", "code": code}


async def ingest(append, session, batch, **kwargs):
    r = await database_sync_to_async(append)(session, batch, **kwargs)
    assert r.status_code == 200, r.content
    return r.json()


# ---- auth ------------------------------------------------------------------------------


async def test_it_closes_4401_without_credentials(connect, make_session):
    session = await database_sync_to_async(make_session)()
    comm = await connect(f"/ws/sessions/{session.pk}/", key=None)
    await assert_closed_with(comm, 4401)


async def test_it_closes_4401_with_a_bad_token(connect, make_session):
    session = await database_sync_to_async(make_session)()
    comm = await connect(f"/ws/sessions/{session.pk}/", key="nope")
    await assert_closed_with(comm, 4401)


async def test_it_closes_4403_for_someone_elses_session(
    connect, make_session, make_agent, other_user
):
    theirs = await database_sync_to_async(lambda: make_session(make_agent(owner=other_user)))()
    comm = await connect(f"/ws/sessions/{theirs.pk}/")
    await assert_closed_with(comm, 4403)


async def test_it_closes_4403_for_an_unknown_session(connect, db):
    comm = await connect(f"/ws/sessions/{uuid.uuid4()}/")
    await assert_closed_with(comm, 4403)


# ---- session stream --------------------------------------------------------------------


async def test_it_sends_state_then_replays_then_forwards_live(connect, append, make_session):
    session = await database_sync_to_async(make_session)(status=SessionStatus.RUNNING)
    await ingest(append, session, lines(1, 5))
    comm = await connect(f"/ws/sessions/{session.pk}/")
    first = await receive(comm)
    assert first["type"] == "session"
    assert first["session"]["id"] == str(session.pk)
    assert await receive_seqs(comm, 5) == [1, 2, 3, 4, 5]
    await ingest(append, session, lines(6, 8))
    assert await receive_seqs(comm, 3) == [6, 7, 8]
    await ingest(append, session, lines(6, 8))  # a retry: stored once, sent once
    await assert_silent(comm)
    await comm.disconnect()


async def test_a_reconnect_with_after_resumes_mid_stream(connect, append, make_session):
    session = await database_sync_to_async(make_session)()
    await ingest(append, session, lines(1, 6))
    comm = await connect(f"/ws/sessions/{session.pk}/?after=4")
    assert (await receive(comm))["type"] == "session"
    assert await receive_seqs(comm, 2) == [5, 6]
    await ingest(append, session, lines(5, 9))
    assert await receive_seqs(comm, 3) == [7, 8, 9]
    await comm.disconnect()


async def test_it_replays_long_sessions_in_pages(connect, append, make_session, monkeypatch):
    monkeypatch.setattr(consumers, "PAGE", 4)
    session = await database_sync_to_async(make_session)()
    await ingest(append, session, lines(1, 10))
    comm = await connect(f"/ws/sessions/{session.pk}/")
    assert await receive_seqs(comm, 10) == list(range(1, 11))
    await comm.disconnect()


async def test_lines_committed_during_the_replay_are_not_lost(
    connect, append, make_session, monkeypatch
):
    session = await database_sync_to_async(make_session)()
    await ingest(append, session, lines(1, 5))
    real_read = consumers._read_lines
    calls = []

    async def read_then_commit_more(*args):
        page = await real_read(*args)
        if not calls:
            calls.append(1)
            await ingest(append, session, lines(6, 8))  # published while the replay runs
        return page

    monkeypatch.setattr(consumers, "_read_lines", read_then_commit_more)
    comm = await connect(f"/ws/sessions/{session.pk}/")
    assert await receive_seqs(comm, 8) == list(range(1, 9))
    await assert_silent(comm)
    await comm.disconnect()


async def test_it_drops_live_lines_it_already_sent(connect, append, make_session):
    session = await database_sync_to_async(make_session)()
    await ingest(append, session, lines(1, 7))
    comm = await connect(f"/ws/sessions/{session.pk}/?after=0")
    assert await receive_seqs(comm, 7) == list(range(1, 8))
    stale = await _stored(session, 3, 7)
    await _group_send(session, stale)
    await assert_silent(comm)
    await comm.disconnect()


async def test_a_live_batch_after_a_gap_is_caught_up_from_the_database(
    connect, append, make_session
):
    session = await database_sync_to_async(make_session)()
    await ingest(append, session, lines(1, 3))
    comm = await connect(f"/ws/sessions/{session.pk}/")
    assert await receive_seqs(comm, 3) == [1, 2, 3]
    # 4 is stored but its message never arrives (another process, a lost publish).
    await database_sync_to_async(_store)(session, lines(4, 6))
    await _group_send(session, await _stored(session, 5, 6))
    assert await receive_seqs(comm, 3) == [4, 5, 6]
    await comm.disconnect()


async def test_a_batch_too_big_to_carry_is_read_from_the_database(connect, make_session):
    session = await database_sync_to_async(make_session)()
    comm = await connect(f"/ws/sessions/{session.pk}/")
    assert (await receive(comm))["type"] == "session"
    await database_sync_to_async(_store)(session, lines(1, 4))
    too_big = {"type": "session.lines", "first_seq": 1, "last_seq": 4, "frame": None}
    await get_channel_layer().group_send(events.session_group(session.pk), too_big)
    assert await receive_seqs(comm, 4) == [1, 2, 3, 4]
    await comm.disconnect()


async def test_it_sends_the_session_on_status_change(connect, append, make_session):
    session = await database_sync_to_async(make_session)(status=SessionStatus.RUNNING)
    comm = await connect(f"/ws/sessions/{session.pk}/")
    assert (await receive(comm))["session"]["status"] == "running"
    result = {"status": "completed", "total_cost_usd": 0.01, "num_turns": 1}
    await ingest(append, session, [line(1, "result", data=result)])
    messages = [await receive(comm), await receive(comm)]
    state = next(m for m in messages if m["type"] == "session")
    assert state["session"]["status"] == "completed"
    assert state["session"]["num_turns"] == 1
    await comm.disconnect()


async def test_it_sends_heartbeats(connect, make_session, settings):
    settings.LOGS_WS_HEARTBEAT_SECONDS = 0.2
    session = await database_sync_to_async(make_session)()
    comm = await connect(f"/ws/sessions/{session.pk}/")
    assert (await comm.receive_json_from(timeout=3))["type"] == "session"
    assert await comm.receive_json_from(timeout=3) == {"type": "heartbeat"}
    await comm.disconnect()


async def test_lines_on_the_socket_are_redacted(connect, append, make_session, agent):
    await database_sync_to_async(_add_secret)(agent, "s3cr3t-value")
    session = await database_sync_to_async(make_session)()
    comm = await connect(f"/ws/sessions/{session.pk}/")
    await receive(comm)
    await ingest(append, session, [line(1, text="key s3cr3t-value", data=["s3cr3t-value"])])
    message = await receive(comm)
    assert message["lines"][0]["text"] == "key ***"
    assert message["lines"][0]["data"] == ["***"]
    await comm.disconnect()


async def test_it_polls_the_database_when_the_channel_layer_is_down(
    connect, append, make_session, monkeypatch
):
    async def down(*args, **kwargs):
        raise ConnectionError("channel layer down")

    monkeypatch.setattr(get_channel_layer(), "group_add", down)
    session = await database_sync_to_async(make_session)(status=SessionStatus.RUNNING)
    comm = await connect(f"/ws/sessions/{session.pk}/")
    assert (await receive(comm))["type"] == "session"
    await ingest(append, session, lines(1, 2))
    assert await receive_seqs(comm, 2) == [1, 2]
    await ingest(append, session, [line(3, "result", data={"status": "failed"})])
    messages = [await receive(comm), await receive(comm)]
    assert {m["type"] for m in messages} == {"lines", "session"}
    await comm.disconnect()


# ---- agent stream ----------------------------------------------------------------------


async def test_the_agent_socket_sends_state_then_events(connect, append, make_session, agent):
    comm = await connect(f"/ws/agents/{agent.pk}/")
    state = await receive(comm)
    assert state["type"] == "agent"
    assert state["agent"]["id"] == str(agent.pk)
    assert state["deployment"] is None
    deployment = {"type": "deployment", "deployment": {"id": "d1", "status": "ready"}}
    await sync_to_async(events.publish_agent_event)(agent.pk, deployment)
    assert await receive(comm) == deployment
    session = await database_sync_to_async(make_session)(status=SessionStatus.RUNNING)
    await ingest(append, session, [line(1, "result", data={"status": "completed"})])
    message = await receive(comm)
    assert message["type"] == "session"
    assert message["session"]["id"] == str(session.pk)
    await comm.disconnect()


async def test_the_agent_socket_refuses_others(connect, make_agent, other_user):
    theirs = await database_sync_to_async(make_agent)(owner=other_user)
    comm = await connect(f"/ws/agents/{theirs.pk}/")
    await assert_closed_with(comm, 4403)
    comm = await connect(f"/ws/agents/{theirs.pk}/", key=None)
    await assert_closed_with(comm, 4401)


# ---- helpers ---------------------------------------------------------------------------


def _store(session, batch):
    from datetime import datetime

    LogLine.objects.bulk_create(
        LogLine(
            session=session,
            seq=x["seq"],
            kind=x["kind"],
            text=x["text"],
            ts=datetime.fromisoformat(x["ts"]),
        )
        for x in batch
    )


@database_sync_to_async
def _stored(session, first, last):
    return list(LogLine.objects.filter(session=session, seq__gte=first, seq__lte=last))


async def _group_send(session, payload):
    await get_channel_layer().group_send(
        events.session_group(session.pk), events.lines_message(session.pk, payload)
    )


def _add_secret(agent, value):
    secret = Secret(agent=agent, name="TOKEN")
    secret.set_value(value)
    secret.save()
