"""Publishing from a thread with no loop (a Celery worker thread in the embedded studio) to
the in-memory channel layer reaches sockets on the server loop runstudio hands over."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from channels.layers import InMemoryChannelLayer

from logs import events


@pytest.fixture
def server_loop():
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    events.use_server_loop(None)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


@pytest.mark.django_db(transaction=True)  # autocommit: on_commit publishes at once
def test_a_worker_threads_event_reaches_a_socket_waiting_on_the_server_loop(
    monkeypatch, server_loop
):
    layer = InMemoryChannelLayer()
    monkeypatch.setattr(events, "get_channel_layer", lambda: layer)
    agent_id = uuid.uuid4()

    async def subscribe() -> str:
        channel = await layer.new_channel()
        await layer.group_add(events.agent_group(agent_id), channel)
        return channel

    channel = asyncio.run_coroutine_threadsafe(subscribe(), server_loop).result(5)
    # A socket's consumer, waiting on the server loop as runstudio's would.
    waiting = asyncio.run_coroutine_threadsafe(layer.receive(channel), server_loop)
    events.use_server_loop(server_loop)

    events.publish_agent_event(agent_id, {"type": "deployment", "deployment": {"id": "d"}})

    try:
        message = waiting.result(5)
    finally:
        waiting.cancel()
    assert message == {
        "type": "agent.event",
        "event": {"type": "deployment", "deployment": {"id": "d"}},
    }
