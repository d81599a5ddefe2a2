"""The one place that publishes to the channel layer (what WebSocket consumers forward).

Groups:
- ``session.<uuid>``: one session's log lines and its status changes.
- ``agent.<uuid>``: one agent's deployment and session events.

Channel-layer messages (``type`` selects the consumer handler of the same name):
- ``{"type": "session.lines", "session_id", "first_seq", "last_seq", "frame"}`` to the
  session group: ``frame`` is the WebSocket text ``{"type": "lines", "lines": [...]}``,
  encoded once here rather than once per socket, or None when the lines have a hole or are
  too big to carry; consumers then read up to ``last_seq`` from the database.
- ``{"type": "session.changed", "session": {...}}`` to the session group and the agent group.
- ``{"type": "agent.event", "event": {...}}`` to the agent group; ``event`` is forwarded to
  browsers as is, e.g. ``{"type": "deployment", "deployment": {...}}``.

Every publish is scheduled with ``transaction.on_commit`` so no client sees a row that could
still roll back, and a channel-layer failure is logged, never raised: readers catch up from
the database.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

logger = logging.getLogger(__name__)

# Above this the lines stay in the database and the message only says how far to read:
# the channel layer holds messages in memory for each receiving process.
MAX_FRAME_CHARS = 256 * 1024


def session_group(session_id) -> str:
    return f"session.{session_id}"


def agent_group(agent_id) -> str:
    return f"agent.{agent_id}"


def publish_lines(session_id, lines: list) -> None:
    """After commit, send stored lines (LineIn or LogLine, in seq order) to the session."""
    if lines:
        message = lines_message(session_id, lines)
        transaction.on_commit(lambda: _send([session_group(session_id)], message))


def lines_message(session_id, lines: list) -> dict[str, Any]:
    """The channel-layer message for stored lines (LineIn or LogLine, in seq order)."""
    from logs.serializers import lines_frame

    first, last = lines[0].seq, lines[-1].seq
    frame = None
    if last - first + 1 == len(lines):  # no hole: a socket that has first - 1 can take it
        frame = lines_frame(lines)
        if len(frame) > MAX_FRAME_CHARS:
            frame = None
    return {
        "type": "session.lines",
        "session_id": str(session_id),
        "first_seq": first,
        "last_seq": last,
        "frame": frame,
    }


def publish_session(session) -> None:
    """After commit, tell the session's and its agent's subscribers the session's state.

    Call it on every status change and when a session is created (the agent page lists it).
    """
    from logs.serializers import SessionOutputSerializer

    message = {"type": "session.changed", "session": SessionOutputSerializer(session).data}
    _on_commit([session_group(session.pk), agent_group(session.agent_id)], message)


def publish_agent_event(agent_id, payload: dict[str, Any]) -> None:
    """After commit, forward ``payload`` (it has its own ``type``) to the agent's sockets."""
    _on_commit([agent_group(agent_id)], {"type": "agent.event", "event": payload})


# The embedded studio's server loop (see use_server_loop), or None.
_server_loop: asyncio.AbstractEventLoop | None = None


def use_server_loop(loop: asyncio.AbstractEventLoop | None) -> None:
    """Name the event loop the embedded studio serves WebSockets on (``runstudio`` calls it
    with the loop it runs, before anything publishes; None forgets it).

    The in-memory channel layer's queues belong to that loop: a message put from another
    loop (``async_to_sync`` in a Celery worker thread makes one of its own) would not wake
    the socket waiting on it. With the Redis layer (production) the loop does not matter.
    """
    global _server_loop
    _server_loop = loop


def _in_memory_layer_loop(layer) -> asyncio.AbstractEventLoop | None:
    """The loop to publish on from this thread, when it must be the server's."""
    loop = _server_loop
    if not isinstance(layer, InMemoryChannelLayer) or loop is None or not loop.is_running():
        return None
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return loop  # a thread with no loop of its own: a worker or a request thread
    return None  # on a running loop (the server's own thread): async_to_sync refuses there


def _on_commit(groups: list[str], message: dict[str, Any]) -> None:
    # msgpack (the Redis layer) knows no UUID, Decimal or datetime: send JSON types only.
    message = json.loads(json.dumps(message, cls=DjangoJSONEncoder))
    transaction.on_commit(lambda: _send(groups, message))


def _send(groups: list[str], message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    loop = _in_memory_layer_loop(layer)
    for group in groups:
        try:
            if loop is not None:
                asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop).result(5)
            else:
                async_to_sync(layer.group_send)(group, message)
        except Exception:  # the append already committed; readers catch up from the DB
            logger.warning(
                "channel layer publish failed group=%s type=%s",
                group,
                message["type"],
                exc_info=True,
            )
