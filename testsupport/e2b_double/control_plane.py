"""The E2B control plane (api.e2b.app) routes the SDK uses, over double sandboxes.

Answers follow the shapes the SDK's generated client parses (`Sandbox`, `ListedSandbox`,
`SandboxDetail`, `Error`) and the statuses it branches on (201/200, 204, 400, 401, 404, 409,
429), with E2B's own messages where a user will read them. Like E2B's API it enforces the
plan's caps (a timeout over `max_timeout_seconds`, more than `max_sandboxes` at once), pages
lists (`limit`, `nextToken`, the `x-next-token` header) and filters them by metadata, state
(comma-joined), template and start time, newest first unless `order=asc`.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import string
import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, parse_qsl, unquote

from .asgi import read_body, send_bytes, send_json
from .sandbox import DoubleSandbox

ENVD_VERSION = "0.6.7"
DEFAULT_TIMEOUT = 300
DEFAULT_LIMIT = 100
MAX_LIMIT = 100
ROUTE = re.compile(r"^(?:/v2)?/sandboxes(?:/(?P<id>[^/]+)(?:/(?P<action>[a-z]+))?)?$")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _error(code: int, message: str) -> dict:
    return {"code": code, "message": message}


def _new_id() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "i" + "".join(secrets.choice(alphabet) for _ in range(19))


class ControlPlane:
    def __init__(self, double):
        self.double = double

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if headers.get("x-api-key") != self.double.api_key:
            message = "Invalid API key, please visit https://e2b.dev/docs to get your API key."
            return await send_json(send, 401, {"code": 401, "message": message})
        match = ROUTE.match(scope["path"])
        if match is None:
            return await send_json(send, 404, {"code": 404, "message": "Not found"})
        body = await read_body(receive)
        payload = json.loads(body) if body else {}
        method, sandbox_id, action = scope["method"], match["id"], match["action"]
        if sandbox_id is None:
            if method == "POST":
                return await self.create(send, payload)
            if method == "GET":
                return await self.list(send, parse_qs(scope["query_string"].decode()))
        sbx = self.double.sandboxes.get(sandbox_id or "")
        if sbx is None or sbx.state == "killed":
            message = f"sandbox \"{sandbox_id}\" doesn't exist or you don't have access to it"
            return await send_json(send, 404, {"code": 404, "message": message})
        if method == "GET" and action is None:
            return await send_json(send, 200, self.detail(sbx))
        if method == "DELETE" and action is None:
            self.double.destroy(sbx.sandbox_id)
            return await send_bytes(send, 204, b"")
        if method == "POST" and action == "timeout":
            timeout = int(payload.get("timeout", 0))
            if refused := self._timeout_refused(timeout):
                return await send_json(send, 400, refused)
            if sbx.state == "paused":
                return await send_json(send, 409, _error(409, f"Sandbox {sandbox_id} is paused"))
            sbx.end_at = time.time() + timeout
            return await send_bytes(send, 204, b"")
        if method == "POST" and action == "pause":
            if sbx.state == "paused":
                message = f"Sandbox {sandbox_id} is already paused"
                return await send_json(send, 409, {"code": 409, "message": message})
            sbx.pause()
            return await send_bytes(send, 204, b"")
        if method == "POST" and action in ("connect", "resume"):
            timeout = int(payload.get("timeout", DEFAULT_TIMEOUT))
            if refused := self._timeout_refused(timeout):
                return await send_json(send, 400, refused)
            status = 200
            if sbx.state == "paused":
                sbx.resume(timeout)
                status = 201
            elif "timeout" in payload:
                # A running sandbox's timeout only ever grows on connect.
                sbx.end_at = max(sbx.end_at, time.time() + timeout)
            return await send_json(send, status, self.created(sbx))
        await send_json(send, 405, {"code": 405, "message": "Method not allowed"})

    def _timeout_refused(self, timeout: int) -> dict | None:
        """E2B's answer to a timeout over the plan's maximum (Hobby: 1 hour)."""
        cap = self.double.max_timeout_seconds
        if timeout > cap:
            hours = cap // 3600
            return _error(400, f"Timeout cannot be greater than {hours} hours")
        return None

    async def create(self, send, payload):
        template_id = payload.get("templateID", "")
        template = self.double.templates.get(template_id)
        if template is None:
            message = f"template '{template_id}' not found"
            return await send_json(send, 404, {"code": 404, "message": message})
        timeout = int(payload.get("timeout", DEFAULT_TIMEOUT))
        if refused := self._timeout_refused(timeout):
            return await send_json(send, 400, refused)
        running = sum(1 for s in self.double.sandboxes.values() if s.state == "running")
        if running >= self.double.max_sandboxes:
            message = (
                "You have reached the maximum number of concurrent E2B sandboxes "
                f"({self.double.max_sandboxes}). If you need more, please contact us at "
                "'https://e2b.dev/docs/getting-help'"
            )
            return await send_json(send, 429, _error(429, message))
        sandbox_id = _new_id()
        sbx = DoubleSandbox(
            sandbox_id=sandbox_id,
            template_id=template_id,
            template=template,
            root=self.double.root / sandbox_id,
            timeout=timeout,
            metadata=dict(payload.get("metadata") or {}),
            env_vars=dict(payload.get("envVars") or {}),
            access_token=secrets.token_urlsafe(24),
            ro_binds=self.double.ro_binds,
        )
        if payload.get("autoPause"):
            sbx.on_timeout = "pause"
        self.double.sandboxes[sandbox_id] = sbx
        await sbx.boot()
        await send_json(send, 201, self.created(sbx))

    async def list(self, send, query):
        wanted = {}
        for raw in query.get("metadata", []):
            wanted.update({unquote(k): unquote(v) for k, v in parse_qsl(raw)})
        states = {st for raw in query.get("state", []) for st in raw.split(",") if st}
        states = states or {"running", "paused"}
        template = (query.get("template") or [""])[0]
        after = _parse_time(query["startedAfter"][0]) if query.get("startedAfter") else None
        found = [
            sbx
            for sbx in list(self.double.sandboxes.values())
            if sbx.state in states
            and all(sbx.metadata.get(k) == v for k, v in wanted.items())
            and (not template or template == sbx.template_id)
            and (after is None or _parse_time(_iso(sbx.started_at)) >= after)
        ]
        ascending = (query.get("order") or ["desc"])[0] == "asc"
        found.sort(key=lambda s: (s.started_at, s.sandbox_id), reverse=not ascending)
        limit = min(int((query.get("limit") or [DEFAULT_LIMIT])[0]), MAX_LIMIT)
        token = (query.get("nextToken") or [""])[0]
        start = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
        page = found[start : start + limit]
        headers = []
        if start + limit < len(found):
            cursor = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
            headers.append((b"x-next-token", cursor.encode()))
        body = json.dumps([self.listed(s) for s in page]).encode()
        await send_bytes(send, 200, body, "application/json", headers=headers)

    def created(self, sbx: DoubleSandbox) -> dict:
        return {
            "templateID": sbx.template_id,
            "sandboxID": sbx.sandbox_id,
            "clientID": "double",
            "envdVersion": ENVD_VERSION,
            "envdAccessToken": sbx.access_token,
            "trafficAccessToken": None,
            "domain": self.double.domain,
        }

    def listed(self, sbx: DoubleSandbox) -> dict:
        return {
            "templateID": sbx.template_id,
            "sandboxID": sbx.sandbox_id,
            "clientID": "double",
            "startedAt": _iso(sbx.started_at),
            "endAt": _iso(sbx.end_at),
            "cpuCount": sbx.template.cpu_count,
            "memoryMB": sbx.template.memory_mb,
            "diskSizeMB": 1024,
            "state": sbx.state,
            "envdVersion": ENVD_VERSION,
            "metadata": sbx.metadata,
        }

    def detail(self, sbx: DoubleSandbox) -> dict:
        return {
            **self.listed(sbx),
            "envdAccessToken": sbx.access_token,
            "domain": self.double.domain,
        }
