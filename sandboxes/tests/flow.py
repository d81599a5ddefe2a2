"""Polling helpers for tests that drive the studio through its API."""

from __future__ import annotations

import time

from agent_runtime.protocol import FINAL_STATUSES


def wait_for(predicate, *, timeout: float = 30.0, interval: float = 0.05, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


def deploy_ready(api, agent_id, *, timeout: float = 30.0) -> dict:
    res = api.post(f"/api/agents/{agent_id}/deploy", {}, format="json")
    assert res.status_code == 202, res.content

    def ready():
        res = api.get(f"/api/agents/{agent_id}/sandbox")
        assert res.status_code == 200, res.content  # a failed deploy's 404 says why
        body = res.json()
        status = body["deployment"]["status"]
        assert status not in ("failed", "stopped"), body
        return body["deployment"] if status == "ready" else None

    return wait_for(ready, timeout=timeout, what="sandbox ready")


def session_done(api, session_id, *, timeout: float = 60.0) -> dict:
    def done():
        body = api.get(f"/api/sessions/{session_id}/").json()
        return body if body["status"] in FINAL_STATUSES else None

    return wait_for(done, timeout=timeout, what=f"session {session_id} to finish")


def all_lines(api, session_id) -> list[dict]:
    lines, after = [], 0
    while True:
        body = api.get(f"/api/sessions/{session_id}/logs?after={after}&limit=500").json()
        lines += body["lines"]
        if not body["lines"]:
            return lines
        after = body["next_after"]
