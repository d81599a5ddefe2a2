"""The E2B control plane (api.e2b.app) routes the SDK uses, over double sandboxes.

Answers follow the shapes the SDK's generated client parses (`Sandbox`, `ListedSandbox`,
`SandboxDetail`, `Error`) and the statuses it branches on (201/200, 204, 401, 404, 409).
"""

from __future__ import annotations

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
ROUTE = re.compile(r"^(?:/v2)?/sandboxes(?:/(?P<id>[^/]+)(?:/(?P<action>[a-z]+))?)?$")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


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
            sbx.end_at = time.time() + int(payload["timeout"])
            return await send_bytes(send, 204, b"")
        if method == "POST" and action == "pause":
            if sbx.state == "paused":
                message = f"Sandbox {sandbox_id} is already paused"
                return await send_json(send, 409, {"code": 409, "message": message})
            sbx.state = "paused"
            return await send_bytes(send, 204, b"")
        if method == "POST" and action in ("connect", "resume"):
            timeout = int(payload.get("timeout", DEFAULT_TIMEOUT))
            status = 200
            if sbx.state == "paused":
                sbx.state, status = "running", 201
                sbx.end_at = time.time() + timeout
            elif "timeout" in payload:
                # A running sandbox's timeout only ever grows on connect.
                sbx.end_at = max(sbx.end_at, time.time() + timeout)
            return await send_json(send, status, self.created(sbx))
        await send_json(send, 405, {"code": 405, "message": "Method not allowed"})

    async def create(self, send, payload):
        template_id = payload.get("templateID", "")
        template = self.double.templates.get(template_id)
        if template is None:
            message = f"template '{template_id}' not found"
            return await send_json(send, 404, {"code": 404, "message": message})
        sandbox_id = _new_id()
        sbx = DoubleSandbox(
            sandbox_id=sandbox_id,
            template_id=template_id,
            template=template,
            root=self.double.root / sandbox_id,
            timeout=int(payload.get("timeout", DEFAULT_TIMEOUT)),
            metadata=dict(payload.get("metadata") or {}),
            env_vars=dict(payload.get("envVars") or {}),
            access_token=secrets.token_urlsafe(24),
            ro_binds=self.double.ro_binds,
        )
        self.double.sandboxes[sandbox_id] = sbx
        await sbx.boot()
        await send_json(send, 201, self.created(sbx))

    async def list(self, send, query):
        wanted = {}
        for raw in query.get("metadata", []):
            wanted.update({unquote(k): unquote(v) for k, v in parse_qsl(raw)})
        states = set(query.get("state", [])) or {"running", "paused"}
        listed = [
            self.listed(sbx)
            for sbx in list(self.double.sandboxes.values())
            if sbx.state in states and all(sbx.metadata.get(k) == v for k, v in wanted.items())
        ]
        await send_json(send, 200, listed)

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
            "cpuCount": 2,
            "memoryMB": 512,
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
