"""Live log and agent sockets. Auth happened in ASGI middleware (studio/ws_auth.py).

``ws/sessions/<id>/?after=<seq>``: the session's state, then every stored line with
seq > after, then live batches, in seq order with no gap and no duplicate. The consumer joins
the group before it replays, remembers the highest seq it sent and drops anything at or below
it; a live batch that does not start right after it (a message lost or reordered between
web processes) is replaced by a database read up to that batch's last seq. A periodic sweep
(every heartbeat) reads the database for anything newer than what was sent, so a message the
layer dropped is still delivered. If the channel layer is down at connect, the socket polls
the database every ``LOGS_WS_POLL_SECONDS`` instead.

``ws/agents/<id>/``: the agent's state on connect, then deployment and session events.

Close codes: 4401 no user, 4403 someone else's (or no such) session or agent. Heartbeats
``{"type": "heartbeat"}`` every ``LOGS_WS_HEARTBEAT_SECONDS`` (15).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from agents.selectors import agent_get, session_get, sessions_for
from logs import selectors
from logs.events import agent_group, session_group
from logs.serializers import SessionOutputSerializer
from logs.services import STATUS_RANK
from sandboxes.selectors import latest_sandbox
from sandboxes.serializers import SandboxOutputSerializer
from studio.errors import NotFound

logger = logging.getLogger(__name__)

PAGE = 500
# What a client must see change; duration_seconds ticks by itself, last_seq rides on lines.
_STATE_KEYS = ("status", "finished_at", "num_turns", "total_cost_usd", "claude_session_id", "error")


class _BaseConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None
    _ticker: asyncio.Task | None = None

    async def _admit(self) -> bool:
        # Accept first: a close before accept reaches a browser as a bare HTTP 403.
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return False
        return True

    async def _join(self, group: str) -> bool:
        try:
            await self.channel_layer.group_add(group, self.channel_name)
        except Exception:
            logger.warning("channel layer unavailable, polling group=%s", group, exc_info=True)
            return False
        self.group = group
        return True

    async def disconnect(self, code):
        if self._ticker:
            self._ticker.cancel()
        if self.group:
            with contextlib.suppress(Exception):
                await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        pass  # clients only listen

    def _start_ticker(self, polling: bool) -> None:
        self._ticker = asyncio.create_task(self._tick(polling))

    async def _tick(self, polling: bool) -> None:
        beat = float(getattr(settings, "LOGS_WS_HEARTBEAT_SECONDS", 15))
        poll = float(getattr(settings, "LOGS_WS_POLL_SECONDS", 1))
        interval = min(beat, poll) if polling else beat
        last_beat = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            try:
                await self._sweep()
            except Exception:  # a failed sweep must not kill the socket; the next one retries
                logger.warning("websocket sweep failed", exc_info=True)
            if time.monotonic() - last_beat >= beat * 0.99:
                await self.send_json({"type": "heartbeat"})
                last_beat = time.monotonic()

    async def _sweep(self) -> None:
        pass


class SessionLogConsumer(_BaseConsumer):
    async def connect(self):
        if not await self._admit():
            return
        session = await _owned_session(self.scope["user"], self.scope["url_route"]["kwargs"])
        if session is None:
            await self.close(code=4403)
            return
        self.session_id = session.pk
        self.sent = _after(self.scope)
        self.state: dict = {}
        self.lock = asyncio.Lock()  # one writer of lines at a time: handlers and the sweep
        joined = await self._join(session_group(session.pk))  # before the replay: no gap
        await self._send_state(SessionOutputSerializer(session).data)
        async with self.lock:
            await self._catch_up(upto=None)
        self._start_ticker(polling=not joined)

    async def session_lines(self, event):
        """A committed batch: send its frame when it follows what this socket has, else read
        the database up to its last line (a hole, an overlap, or too big to carry)."""
        async with self.lock:
            upto = event["last_seq"]
            if upto <= self.sent:
                return
            if event.get("frame") is not None and event["first_seq"] == self.sent + 1:
                await self.send(text_data=event["frame"])
                self.sent = upto
            else:
                await self._catch_up(upto=upto)

    async def session_changed(self, event):
        await self._send_state(event["session"])

    async def _sweep(self):
        session = await _session_by_id(self.session_id)
        if session is None:
            return
        await self._send_state(SessionOutputSerializer(session).data)
        if session.last_seq > self.sent:
            async with self.lock:
                await self._catch_up(upto=session.last_seq)

    async def _send_state(self, state: dict) -> None:
        # Events may arrive after a fresher read at connect: never step the status back.
        if self.state and STATUS_RANK.get(state["status"], 0) < STATUS_RANK.get(
            self.state["status"], 0
        ):
            return
        if self.state and all(self.state.get(k) == state.get(k) for k in _STATE_KEYS):
            return
        self.state = dict(state)
        await self.send_json({"type": "session", "session": state})

    async def _catch_up(self, *, upto: int | None) -> None:
        """Send stored lines after ``self.sent`` (up to ``upto``) in pages. Hold ``self.lock``."""
        while True:
            page = await _read_lines(self.session_id, self.sent, upto)
            if not page:
                return
            await self.send_json({"type": "lines", "lines": page})
            self.sent = page[-1]["seq"]
            if len(page) < PAGE:
                return


class AgentEventsConsumer(_BaseConsumer):
    async def connect(self):
        if not await self._admit():
            return
        state = await _agent_state(self.scope["user"], self.scope["url_route"]["kwargs"])
        if state is None:
            await self.close(code=4403)
            return
        await self._join(agent_group(state["agent"]["id"]))
        await self.send_json(state)
        self._start_ticker(polling=False)

    async def session_changed(self, event):
        await self.send_json({"type": "session", "session": event["session"]})

    async def agent_event(self, event):
        await self.send_json(event["event"])


def _after(scope) -> int:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("after") or ["0"]
    try:
        return max(0, int(values[0]))
    except ValueError:
        return 0


@database_sync_to_async
def _owned_session(user, kwargs):
    try:
        return session_get(user=user, session_id=kwargs["session_id"])
    except NotFound:
        return None


@database_sync_to_async
def _session_by_id(session_id):
    from agents.models import Session

    return Session.objects.filter(pk=session_id).first()


@database_sync_to_async
def _read_lines(session_id, after: int, upto: int | None) -> list[dict]:
    if upto is None:
        return selectors.session_lines(session=session_id, after=after, limit=PAGE)
    return selectors.session_lines_between(
        session_id=session_id, after=after, upto=upto, limit=PAGE
    )


@database_sync_to_async
def _agent_state(user, kwargs) -> dict | None:
    """``{"type": "agent", "agent", "deployment", "sessions"}``: what the page shows first."""
    try:
        agent = agent_get(user=user, agent_id=kwargs["agent_id"])
    except NotFound:
        return None
    sandbox = latest_sandbox(agent)
    sessions = sessions_for(user=user, agent_id=agent.pk)[:20]
    deployment = SandboxOutputSerializer(sandbox).data if sandbox is not None else None
    return {
        "type": "agent",
        "agent": {"id": str(agent.pk), "name": agent.name},
        "deployment": deployment,
        "sessions": SessionOutputSerializer(sessions, many=True).data,
    }
