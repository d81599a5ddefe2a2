"""A scripted, Anthropic-compatible model server for tests and offline demos.

It answers ``POST /v1/messages`` (query string ignored) with the SSE stream the Claude Code
CLI expects, playing back *scripts* instead of thinking. Point the CLI at it with
``ANTHROPIC_BASE_URL=<base_url>`` and ``ANTHROPIC_API_KEY=test``.

A script is chosen by a *marker*: the first script whose marker appears in the latest human
prompt of the conversation (the last user message that is not a tool result) plays. The turn
index is the number of assistant messages after that prompt, so the server is stateless per
conversation and a ``resume`` follow-up with a new marker starts that script at turn 0.
When nothing matches, the reply echoes the prompt.

Script format (JSON-friendly)::

    {"marker": "[[bash-file]]",
     "turns": [
        [{"type": "text", "text": "Creating it."},
         {"type": "tool_use", "name": "Bash", "input": {"command": "echo hi > out.txt"}}],
        {"delay": 2.0, "blocks": [{"type": "thinking", "thinking": "Done?"},
                                  {"type": "text", "text": "Done."}]},
        {"error": {"status": 500, "type": "api_error", "message": "boom", "times": 1}}
     ]}

A turn is a list of blocks or a dict with ``blocks``, ``delay`` (seconds before answering)
and ``error`` (answer with that HTTP error; ``times`` limits how often, default always).
Blocks: ``text``, ``thinking``, ``tool_use`` (any tool name) and ``{"type": "delay",
"seconds": s}`` to pause mid-stream. Past the last turn the server answers a short text.

Python API::

    model = ScriptedModel([script, ...])
    base_url = model.start()          # a free port on 127.0.0.1, served from a thread
    model.requests                     # every request received: {"path", "headers", "body"}
    model.stop()

CLI: ``python -m agent_runtime.scripted_model --port 8001 --script scripts.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
import uuid
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>", re.S)


class ScriptedModel:
    """An in-process scripted model server. See the module docstring for the script format."""

    def __init__(self, scripts: Iterable[dict[str, Any]] = (), *, default: dict | None = None):
        self.scripts: list[dict[str, Any]] = [_check_script(s) for s in scripts]
        self.default = _check_script(default) if default else None
        self.requests: list[dict[str, Any]] = []
        self._error_counts: dict[tuple[int, int], int] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def add_script(self, script: dict[str, Any]) -> None:
        """Register one more script (checked before the ones already registered)."""
        with self._lock:
            self.scripts.insert(0, _check_script(script))

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve from a daemon thread; return the base URL (``http://host:port``)."""
        handler = type("Handler", (_Handler,), {"model": self})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self.base_url

    @property
    def base_url(self) -> str:
        """The URL to use as ``ANTHROPIC_BASE_URL``."""
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def messages_requests(self) -> list[dict[str, Any]]:
        """The recorded ``/v1/messages`` request bodies, in arrival order."""
        with self._lock:
            return [r["body"] for r in self.requests if r["path"] == "/v1/messages"]

    # -- choosing what to answer -------------------------------------------------------------

    def plan(self, body: dict[str, Any]) -> dict[str, Any]:
        """Return the turn to play for a request body: ``{"blocks", "delay", "error"}``."""
        messages = [m for m in body.get("messages", []) if m.get("role") in ("user", "assistant")]
        prompt_at = _last_prompt_index(messages)
        prompt = _text_of(messages[prompt_at]) if prompt_at is not None else ""
        turn_no = sum(1 for m in messages[(prompt_at or 0) + 1 :] if m["role"] == "assistant")
        with self._lock:
            candidates = [*self.scripts, *([self.default] if self.default else [])]
            for script_no, script in enumerate(candidates):
                if script.get("marker", "") in prompt:
                    if turn_no >= len(script["turns"]):
                        return {"blocks": [{"type": "text", "text": "(script finished)"}]}
                    turn = _normalise_turn(script["turns"][turn_no])
                    error = turn.get("error")
                    if error and "times" in error:
                        key = (script_no, turn_no)
                        self._error_counts[key] = self._error_counts.get(key, 0) + 1
                        if self._error_counts[key] > error["times"]:
                            turn = {**turn, "error": None}
                    return turn
        echo = " ".join(REMINDER.sub("", prompt).split())[:500]
        return {"blocks": [{"type": "text", "text": f"Echo: {echo}"}]}


def _check_script(script: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(script, dict) or not isinstance(script.get("turns"), list):
        raise ValueError("a script is a dict with a 'turns' list")
    return script


def _normalise_turn(turn: Any) -> dict[str, Any]:
    if isinstance(turn, list):
        return {"blocks": turn}
    return {
        "blocks": turn.get("blocks", []),
        "delay": turn.get("delay"),
        "error": turn.get("error"),
    }


def _is_tool_result(message: dict[str, Any]) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )


def _last_prompt_index(messages: list[dict[str, Any]]) -> int | None:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i]["role"] == "user" and not _is_tool_result(messages[i]):
            return i
    return None


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    parts = [b.get("text", "") for b in content or [] if isinstance(b, dict)]
    return "\n".join(p for p in parts if p)


def _estimate_tokens(value: Any) -> int:
    return max(1, len(json.dumps(value)) // 4)


def sse_events(turn: dict[str, Any], model: str, input_tokens: int) -> Iterable[dict | float]:
    """Yield the SSE event payloads for one turn (a float means: sleep that long first)."""
    message_id = f"msg_{uuid.uuid4().hex[:24]}"
    yield {
        "type": "message_start",
        "message": {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1},
        },
    }
    index, output_tokens, stop_reason = 0, 1, "end_turn"
    for block in turn["blocks"]:
        kind = block.get("type")
        if kind == "delay":
            yield float(block.get("seconds", 0))
            continue
        if kind == "text":
            start = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": block["text"]}]
        elif kind == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [
                {"type": "thinking_delta", "thinking": block["thinking"]},
                {"type": "signature_delta", "signature": block.get("signature", "c2lnbmF0dXJl")},
            ]
        elif kind == "tool_use":
            stop_reason = "tool_use"
            tool_id = block.get("id") or f"toolu_{uuid.uuid4().hex[:24]}"
            start = {"type": "tool_use", "id": tool_id, "name": block["name"], "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": json.dumps(block["input"])}]
        else:
            raise ValueError(f"unknown block type {kind!r}")
        yield {"type": "content_block_start", "index": index, "content_block": start}
        for delta in deltas:
            yield {"type": "content_block_delta", "index": index, "delta": delta}
        yield {"type": "content_block_stop", "index": index}
        output_tokens += _estimate_tokens(block)
        index += 1
    yield {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": {"output_tokens": output_tokens},
    }
    yield {"type": "message_stop"}


class _Handler(BaseHTTPRequestHandler):
    model: ScriptedModel
    # HTTP/1.0: the SSE body ends when the connection closes, no chunked encoding needed.
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # quiet in tests
        pass

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self._error(400, "invalid_request_error", "body is not JSON")
        with self.model._lock:
            self.model.requests.append({"path": path, "headers": dict(self.headers), "body": body})
        if path == "/v1/messages/count_tokens":
            return self._json(200, {"input_tokens": _estimate_tokens(body.get("messages"))})
        if path != "/v1/messages":
            return self._error(404, "not_found_error", f"no route {path}")
        turn = self.model.plan(body)
        if turn.get("delay"):
            time.sleep(float(turn["delay"]))
        if turn.get("error"):
            error = turn["error"]
            message = error.get("message", "scripted error")
            return self._error(
                int(error.get("status", 500)), error.get("type", "api_error"), message
            )
        model_name = body.get("model") or "claude-sonnet-4-5"
        events = sse_events(turn, model_name, _estimate_tokens(body.get("messages")))
        if not body.get("stream"):
            return self._json(200, _collect(events))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        try:
            for event in events:
                if isinstance(event, float):
                    time.sleep(event)
                    continue
                chunk = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"
                self.wfile.write(chunk.encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (cancelled run); nothing to clean up

    def do_GET(self) -> None:
        self._error(404, "not_found_error", f"no route {self.path}")

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, kind: str, message: str) -> None:
        self._json(status, {"type": "error", "error": {"type": kind, "message": message}})


def _collect(events: Iterable[dict | float]) -> dict[str, Any]:
    """Fold an SSE event sequence into a non-streaming Messages API response."""
    message: dict[str, Any] = {}
    for event in events:
        if isinstance(event, float):
            time.sleep(event)
        elif event["type"] == "message_start":
            message = event["message"]
        elif event["type"] == "content_block_start":
            message["content"].append(dict(event["content_block"]))
        elif event["type"] == "content_block_delta":
            block, delta = message["content"][event["index"]], event["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "input_json_delta":
                block["input"] = json.loads(delta["partial_json"])
        elif event["type"] == "message_delta":
            message.update(event["delta"])
            message["usage"].update(event["usage"])
    return message


def load_scripts(path: str) -> list[dict[str, Any]]:
    """Load scripts from a JSON file: one script, a list of them, or ``{"scripts": [...]}``."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if isinstance(data, dict) and "scripts" in data:
        data = data["scripts"]
    return data if isinstance(data, list) else [data]


def main(argv: list[str] | None = None) -> None:
    """Run the scripted model server in the foreground."""
    parser = argparse.ArgumentParser(description="Scripted Anthropic-compatible model server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--script", action="append", default=[], help="JSON script file")
    args = parser.parse_args(argv)
    scripts = [s for path in args.script for s in load_scripts(path)]
    model = ScriptedModel(scripts)
    print(f"scripted model on {model.start(args.host, args.port)}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        model.stop()


if __name__ == "__main__":
    main()
