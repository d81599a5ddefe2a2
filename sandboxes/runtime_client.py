"""The studio's client for agent_runtime inside a sandbox (docs/protocol.md)."""

from __future__ import annotations

import time

import requests

from agent_runtime.protocol import PROTOCOL_VERSION
from studio import tokens


class RuntimeUnavailable(Exception):
    """The runtime could not be reached or refused the request. `message` is user-safe."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.status = status


class ProtocolMismatch(RuntimeUnavailable):
    """The runtime answers, but speaks another version of the wire protocol."""


def _check_protocol(health: dict) -> None:
    version = health.get("protocol", 1)
    if version != PROTOCOL_VERSION:
        raise ProtocolMismatch(
            f"The sandbox runtime speaks protocol version {version!r} and this studio "
            f"{PROTOCOL_VERSION}: rebuild the sandbox template (manage.py build_template)."
        )


class RuntimeClient:
    def __init__(self, sandbox, *, timeout: float = 10.0):
        self.base = sandbox.runtime_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {tokens.runtime_token(sandbox.id)}"}
        self.timeout = timeout

    def _call(self, method: str, path: str, **kwargs) -> dict:
        try:
            res = requests.request(
                method, self.base + path, headers=self.headers, timeout=self.timeout, **kwargs
            )
        except requests.RequestException as exc:
            raise RuntimeUnavailable(
                f"The sandbox runtime is not reachable ({type(exc).__name__})."
            ) from None
        try:
            body = res.json()
        except ValueError:
            body = {}
        if res.status_code >= 400:
            raise RuntimeUnavailable(
                body.get("message") or f"The sandbox runtime answered {res.status_code}.",
                status=res.status_code,
            )
        return body

    def health(self) -> dict:
        return self._call("GET", "/health")

    def wait_healthy(self, *, timeout: float) -> dict:
        """Poll /health until it answers healthy, or raise after `timeout` seconds.

        A runtime that reports another protocol version (an E2B template built from other
        code) is refused at once: it would misread the runs sent to it. One that reports
        none predates the field and speaks version 1.
        """
        deadline = time.monotonic() + timeout
        pause = 0.01
        while True:
            try:
                body = self._call("GET", "/health")
                if body.get("status") == "healthy":
                    _check_protocol(body)
                    return body
            except ProtocolMismatch:
                raise
            except RuntimeUnavailable:
                pass
            if time.monotonic() >= deadline:
                raise RuntimeUnavailable(
                    f"Timeout waiting for port 8080: the runtime never answered in {timeout:g} s."
                )
            # Often at first (a runtime usually starts in a fraction of a second), then less:
            # each attempt costs the studio CPU that runtimes starting on a busy machine need.
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 1.5, 0.25)

    def execute(self, body: dict) -> dict:
        return self._call("POST", "/execute", json=body)

    def cancel(self, session_id) -> dict:
        return self._call("POST", f"/sessions/{session_id}/cancel")
