"""The E2B sandbox template: the runtime image with the server already running.

Built with the e2b SDK's template builder from ``agent_runtime/Dockerfile``. E2B snapshots the
sandbox after the start command is ready, so every sandbox boots with the server listening.
The server starts before any per-sandbox secret exists, so it reads its bearer token from
``TOKEN_FILE``, which the studio writes after boot; until then every request gets 503
``NotProvisioned``. That is also why the ready check waits for the port, not for ``/health``.

Used by the studio's ``manage.py build_template``; runs on the studio side (imports ``e2b``),
never inside the sandbox.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_NAME = "agent-studio-runtime"
PORT = 8080
TOKEN_FILE = "/home/user/.agent_runtime/token"
# The runtime's own output, kept in the sandbox: when a deploy times out waiting for port
# 8080, the studio reads its tail from here into its log (sandboxes.backends.e2b).
RUNTIME_LOG = "/home/user/.agent_runtime/runtime.log"
START_CMD = (
    f"cd /opt/agent_runtime && RUNTIME_TOKEN_FILE={TOKEN_FILE} "
    f"python -m agent_runtime serve --port {PORT} --workspace /workspace "
    f"2>&1 | tee -a {RUNTIME_LOG}"
)


class TemplateBuildError(RuntimeError):
    """The template cannot be built as asked (e.g. no E2B API key)."""


def template():
    """The template definition (no network): Dockerfile steps, start command, ready check."""
    from e2b import Template, wait_for_port

    # The build context is this directory, as for `docker build agent_runtime` and
    # `cd agent_runtime && e2b template create` (see the README).
    return (
        Template(
            file_context_path=str(HERE), file_ignore_patterns=["tests/**", "**/__pycache__/**"]
        )
        .from_dockerfile(str(HERE / "Dockerfile"))
        .set_start_cmd(START_CMD, wait_for_port(PORT))
    )


def build_template(
    *,
    api_key: str | None,
    name: str = DEFAULT_NAME,
    cpu_count: int = 2,
    memory_mb: int = 2048,
    skip_cache: bool = False,
    on_log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build (or rebuild) the template on E2B; return ``{"template_id", "build_id", "name"}``.

    Raises ``TemplateBuildError`` without an API key. Blocks until the build finishes.
    """
    if not api_key:
        raise TemplateBuildError("E2B_API_KEY is not set: an E2B API key is needed to build")
    from e2b import Template

    def log(entry: Any) -> None:
        if on_log:
            on_log(str(entry))

    info = Template.build(
        template(),
        name,
        cpu_count=cpu_count,
        memory_mb=memory_mb,
        skip_cache=skip_cache,
        on_build_logs=log,
        api_key=api_key,
    )
    return {
        "template_id": getattr(info, "template_id", None),
        "build_id": getattr(info, "build_id", None),
        "name": getattr(info, "name", name),
    }
