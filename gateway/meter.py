"""Reading usage out of a Messages API answer while its bytes pass through the gateway.

A streamed answer (text/event-stream) is read line by line as chunks arrive: only the
`data:` lines of `message_start` and `message_delta` events are kept and parsed (content
deltas, which are nearly all of the bytes, are skipped as they pass), so nothing is held
back from the client and memory stays bounded. `message_start` carries the model and the
input-side counts; each `message_delta` carries cumulative counts that replace them. A JSON
answer (stream: false) is kept, up to MAX_JSON_BYTES, and parsed at its end.
"""

from __future__ import annotations

import json
from typing import Any

from gateway.pricing import Usage

WANTED_EVENTS = frozenset({"message_start", "message_delta", "error"})
MAX_LINE_BYTES = 1024 * 1024  # a message_start line is a few hundred bytes
MAX_JSON_BYTES = 16 * 1024 * 1024

_USAGE_KEYS = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cache_creation_input_tokens": "cache_write_tokens",
    "cache_read_input_tokens": "cache_read_tokens",
}


class UsageMeter:
    """Feed it the answer's chunks in order; then `usage`, `model` and `error` say what the
    upstream reported."""

    def __init__(self, content_type: str = ""):
        content_type = content_type.lower()
        self.streaming = "text/event-stream" in content_type
        self.is_json = not self.streaming and "json" in content_type
        self.model = ""
        self.error = ""
        self._counts: dict[str, int] = {}
        self._line = bytearray()
        self._skipping = False
        self._event: str | None = None
        self._json = bytearray()

    def feed(self, chunk: bytes) -> None:
        if self.streaming:
            self._feed_sse(chunk)
        elif self.is_json and len(self._json) + len(chunk) <= MAX_JSON_BYTES:
            self._json += chunk

    def finish(self) -> None:
        """Call once the answer has ended (or was cut off)."""
        if self.streaming and self._line and not self._skipping:
            self._end_line(bytes(self._line))
        elif self.is_json and self._json:
            try:
                document = json.loads(self._json)
            except ValueError:
                return
            if isinstance(document, dict):
                self._absorb(document)

    @property
    def usage(self) -> Usage:
        return Usage(**{field: self._counts.get(field, 0) for field in Usage.__dataclass_fields__})

    # -- server-sent events ------------------------------------------------------------------

    def _feed_sse(self, chunk: bytes) -> None:
        pos, size = 0, len(chunk)
        while pos < size:
            newline = chunk.find(b"\n", pos)
            end = size if newline < 0 else newline
            if not self._skipping:
                self._line += chunk[pos:end]
                if len(self._line) > MAX_LINE_BYTES or (
                    self._line[:5] == b"data:" and self._event not in WANTED_EVENTS
                ):
                    self._skipping = True
                    self._line.clear()
            if newline < 0:
                return
            if not self._skipping:
                self._end_line(bytes(self._line))
            self._line.clear()
            self._skipping = False
            pos = newline + 1

    def _end_line(self, line: bytes) -> None:
        line = line.rstrip(b"\r")
        if not line:
            self._event = None  # a blank line ends the event
        elif line.startswith(b"event:"):
            self._event = line[6:].strip().decode("ascii", "replace")
        elif line.startswith(b"data:"):
            try:
                payload = json.loads(line[5:])
            except ValueError:
                return
            if isinstance(payload, dict):
                self._absorb(payload)

    # -- what the payloads say ---------------------------------------------------------------

    def _absorb(self, payload: dict[str, Any]) -> None:
        kind = payload.get("type")
        if kind == "message_start" and isinstance(payload.get("message"), dict):
            self._absorb(payload["message"])
        elif kind == "message":
            if isinstance(payload.get("model"), str):
                self.model = payload["model"][:100]
            self._take_usage(payload.get("usage"))
        elif kind == "message_delta":
            self._take_usage(payload.get("usage"))
        elif kind == "error" and isinstance(payload.get("error"), dict):
            self.error = str(payload["error"].get("message") or payload["error"].get("type"))[:300]

    def _take_usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        for key, field in _USAGE_KEYS.items():
            value = _count(usage.get(key))
            if value is not None:
                self._counts[field] = value
        breakdown = usage.get("cache_creation")
        if isinstance(breakdown, dict):
            value = _count(breakdown.get("ephemeral_1h_input_tokens"))
            if value is not None:
                self._counts["cache_write_1h_tokens"] = value


def _count(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53:
        return value
    return None
