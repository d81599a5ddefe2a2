"""A local stand-in for E2B: control plane + sandbox edge/envd, spoken to by the real SDK.

    with E2BDouble(templates={"agent-runtime": runtime_template()}) as double:
        backend = E2BBackend(**double.backend_options(), template_id="agent-runtime",
                             install_id="test")

Two uvicorn servers run in one background thread on free loopback ports:

- `api_url`: the control plane routes (`POST/GET /v2/sandboxes`, `GET/DELETE
  /sandboxes/{id}`, `POST /sandboxes/{id}/timeout|pause`, `POST /v2/sandboxes/{id}/connect`),
  checking `X-API-KEY`.
- `sandbox_url`: E2B's sandbox edge (`https://sandbox.<domain>` in production), routing by the
  `E2b-Sandbox-Id` header to envd, which checks `X-Access-Token` and serves `process.Process`
  and `filesystem.Filesystem` (the e2b package's own server classes and JSON codec) plus
  `/files` and `/health`.

Each sandbox is a directory bound at `/workspace`, `/home/user` and `/tmp` into bubblewrap
jails that run its processes (see `sandbox.py`); it is killed when its timeout passes (or
paused, with its processes frozen, if it was created with `on_timeout: pause`).

E2B's own sync SDK tests run against this double: `tests/e2b_sdk/` (see its README).

Known divergence: each command runs in a pid namespace of its own, so a process a command
leaves behind (`nohup x &`) dies when the command ends; in an E2B VM it would live on. Use
`commands.run(..., background=True)` for long-lived processes in tests.

Ports: all double sandboxes share the host network, so a template port (8080) is published
on a free loopback port and handed to the start command as `{port_8080}`. E2B reaches a port
at `https://{port}-{sandbox_id}.{domain}`, a name that needs wildcard DNS and TLS; the double
stands in for that DNS + edge hop with `resolve_host()`, which `E2BBackend` takes as
`host_resolver` (with `sandbox_scheme="http"`). The host name itself still comes from the
SDK's `get_host()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn

from .control_plane import ControlPlane
from .envd import EnvdEdge
from .sandbox import BWRAP, DoubleSandbox, DoubleTemplate

__all__ = ["DoubleTemplate", "E2BDouble", "runtime_template", "standin_template"]

REPO_ROOT = str(Path(__file__).resolve().parents[2])
RUNTIME_TOKEN_FILE = "/home/user/.agent_runtime/token"
CLOSED = "127.0.0.1:9"  # where a host of a gone sandbox "resolves": nothing listens there


def _interpreter_binds() -> tuple[str, ...]:
    """What a sandbox process needs to run this interpreter on the repository: the checkout
    first (bwrap mounts in order, so a later bind may sit inside it), then the virtualenv by
    its real path (a worktree's `.venv` may be a symlink to another checkout's)."""
    paths = [REPO_ROOT, os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)]
    return tuple(dict.fromkeys(paths))


def _python_env() -> dict[str, str]:
    return {"PYTHONPATH": REPO_ROOT, "PYTHONDONTWRITEBYTECODE": "1"}


def runtime_template() -> DoubleTemplate:
    """The production template's start command, run by this interpreter."""
    return DoubleTemplate(
        start_cmd=f"{sys.executable} -m agent_runtime serve --host 127.0.0.1 "
        "--port {port_8080} --workspace /workspace",
        env={**_python_env(), "RUNTIME_TOKEN_FILE": RUNTIME_TOKEN_FILE},
    )


def standin_template() -> DoubleTemplate:
    """A minimal runtime (`/health` only) with the same token-file contract."""
    return DoubleTemplate(
        start_cmd=f"{sys.executable} -m testsupport.e2b_double.standin_runtime "
        "--port {port_8080}",
        env={**_python_env(), "RUNTIME_TOKEN_FILE": RUNTIME_TOKEN_FILE},
    )


class E2BDouble:
    def __init__(
        self,
        *,
        templates: dict[str, DoubleTemplate | str],
        api_key: str = "e2b_double_api_key",
        domain: str = "e2b-double.test",
        ro_binds: tuple[str, ...] | None = None,
        max_timeout_seconds: int = 3600,
        max_sandboxes: int = 20,
    ):
        """`max_timeout_seconds` and `max_sandboxes` are the plan's caps (E2B Hobby: 1 hour,
        20 running sandboxes); the control plane refuses what exceeds them as E2B does."""
        if shutil.which(BWRAP) is None:
            raise RuntimeError("The E2B double runs sandbox processes under bubblewrap (bwrap).")
        self.templates = {
            name: DoubleTemplate(start_cmd=t) if isinstance(t, str) else t
            for name, t in templates.items()
        }
        self.api_key = api_key
        self.domain = domain
        self.max_timeout_seconds = max_timeout_seconds
        self.max_sandboxes = max_sandboxes
        self.ro_binds = ro_binds or _interpreter_binds()
        self.sandboxes: dict[str, DoubleSandbox] = {}
        self.root = Path(tempfile.mkdtemp(prefix="e2b-double-"))
        self._servers: list[uvicorn.Server] = []
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> E2BDouble:
        socks = []
        for app in (ControlPlane(self), EnvdEdge(self)):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
            config = uvicorn.Config(
                app, log_level="warning", lifespan="off", http="h11", ws="none",
                loop="asyncio", timeout_graceful_shutdown=1,
            )  # fmt: skip
            self._servers.append(uvicorn.Server(config))
        self.api_url = f"http://127.0.0.1:{socks[0].getsockname()[1]}"
        self.sandbox_url = f"http://127.0.0.1:{socks[1].getsockname()[1]}"
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._main(socks),), name="e2b-double", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not all(s.started for s in self._servers):
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("The E2B double did not start.")
            time.sleep(0.01)
        return self

    async def _main(self, socks) -> None:
        reaper = asyncio.create_task(self._reap())
        try:
            pairs = zip(self._servers, socks, strict=True)
            await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in pairs))
        finally:
            reaper.cancel()

    async def _reap(self) -> None:
        """At a running sandbox's timeout, kill it, or pause it if it was created with
        `lifecycle={"on_timeout": "pause"}`, as E2B does. Paused sandboxes do not time out."""
        while True:
            now = time.time()
            for sbx in list(self.sandboxes.values()):
                if sbx.state == "running" and sbx.end_at <= now:
                    if sbx.on_timeout == "pause":
                        sbx.pause()
                    else:
                        self.destroy(sbx.sandbox_id)
            await asyncio.sleep(0.1)

    def close(self) -> None:
        for sandbox_id in list(self.sandboxes):
            self.destroy(sandbox_id)
        for server in self._servers:
            server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> E2BDouble:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # --- what tests and the backend use ----------------------------------------------

    def destroy(self, sandbox_id: str) -> None:
        sbx = self.sandboxes.pop(sandbox_id, None)
        if sbx is not None:
            sbx.kill()

    def expire(self, sandbox_id: str) -> None:
        """Make a sandbox's timeout pass now (the reaper acts within ~0.1 s)."""
        self.sandboxes[sandbox_id].end_at = time.time()

    def resolve_host(self, host: str) -> str:
        """Stand-in for wildcard DNS + E2B's edge: `{port}-{id}.{domain}` → the loopback
        address the sandbox's port is published on."""
        name, _, domain = host.partition(".")
        port, _, sandbox_id = name.partition("-")
        sbx = self.sandboxes.get(sandbox_id)
        with contextlib.suppress(ValueError):
            if domain == self.domain and sbx is not None and int(port) in sbx.ports:
                return f"127.0.0.1:{sbx.ports[int(port)]}"
        return CLOSED

    def backend_options(self) -> dict:
        """Keyword arguments that point `E2BBackend` at this double."""
        return {
            "api_key": self.api_key,
            "api_url": self.api_url,
            "sandbox_url": self.sandbox_url,
            "domain": self.domain,
            "sandbox_scheme": "http",
            "host_resolver": self.resolve_host,
            "studio_on_sandbox_network": True,
            "max_timeout_seconds": self.max_timeout_seconds,
        }
