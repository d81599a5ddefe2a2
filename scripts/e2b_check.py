"""The real-cloud contract run: `make e2b-check` (needs E2B_API_KEY; costs a few cents).

What the studio relies on at E2B, end to end, through the studio's own E2B backend:

  build   the template from agent_runtime/ under a throwaway name
  deploy  a sandbox from it, provision the runtime token, wait for /health over https
  exec    `python -c "import playwright"` and `node -v` (the template's PATH reaches exec)
  prompt  a scripted model started inside the sandbox drives the real Claude CLI through the
          runtime: a Bash tool writes a file, the run completes (logs spool in the sandbox:
          no studio needs to be reachable from E2B for this check)
  pause   E2B pause (memory and files kept)
  resume  connect resumes it; the runtime answers and the file is still there
  stop    kill; the throwaway template is deleted

Each step prints its wall time. Any failure prints what broke and exits non-zero; the sandbox
and the template are removed whatever happens. Nothing here reads Django settings.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent_runtime.e2b_template import build_template
from sandboxes.backends.base import CreateSpec
from sandboxes.backends.e2b import E2BBackend

MODEL_PORT = 8001
SCRIPT = {
    "marker": "[[e2b-check]]",
    "turns": [
        [
            {"type": "text", "text": "Writing the file."},
            {
                "type": "tool_use",
                "name": "Bash",
                "input": {"command": "echo from-e2b > /workspace/check.txt"},
            },
        ],
        [{"type": "text", "text": "Done."}],
    ],
}
FINAL = {"completed", "failed", "cancelled"}


class Check:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def step(self, name: str, fn):
        t0 = time.monotonic()
        print(f"{name:<8} ...", end="", flush=True)
        try:
            result = fn()
        except Exception as exc:
            print(f" FAILED after {time.monotonic() - t0:.2f}s: {exc}")
            raise
        detail = f"  {result}" if isinstance(result, str) and result else ""
        print(f" ok {time.monotonic() - t0:7.2f}s{detail}")
        return result


def wait_health(url: str, token: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            res = httpx.get(
                f"{url}/health", headers={"Authorization": f"Bearer {token}"}, timeout=10
            )
            if res.status_code == 200 and res.json().get("status") == "healthy":
                return f"runtime {res.json().get('version')}"
            last = f"HTTP {res.status_code}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.5)
    raise RuntimeError(f"the runtime never answered /health ({last})")


def main() -> int:
    api_key = os.environ.get("E2B_API_KEY", "")
    if not api_key:
        print("E2B_API_KEY is not set: this check runs against E2B's cloud with your key.")
        return 2
    name = f"agent-studio-check-{secrets.token_hex(4)}"
    token = secrets.token_urlsafe(32)
    check = Check()
    backend = E2BBackend(api_key=api_key, template_id=name, install_id=f"e2b-check-{name}")
    external_id = ""
    print(f"e2b-check: template {name}")
    try:
        check.step("build", lambda: str(build_template(api_key=api_key, name=name)["name"]))
        handle = check.step(
            "deploy",
            lambda: backend.create(
                CreateSpec(
                    sandbox_id=str(uuid.uuid4()),
                    agent_id="e2b-check",
                    runtime_token=token,
                    timeout_seconds=600,
                )
            ),
        )
        external_id = handle.external_id
        check.step("health", lambda: wait_health(handle.runtime_url, token))

        def run(command: str) -> str:
            result = backend.exec(external_id, command, timeout=60, cwd="/workspace")
            if result.exit_code != 0:
                raise RuntimeError(f"`{command}` exited {result.exit_code}: {result.stderr}")
            return result.stdout.strip()

        check.step("exec", lambda: run('python -c "import playwright; print(playwright.__file__)"'))
        check.step("node", lambda: run("node -v"))

        def prompt() -> str:
            backend.write_file(
                external_id, "/workspace/.e2b-check/script.json", json.dumps([SCRIPT]).encode()
            )
            backend.exec(
                external_id,
                f"nohup python -m agent_runtime.scripted_model --port {MODEL_PORT} "
                "--script /workspace/.e2b-check/script.json >/tmp/model.log 2>&1 &",
                timeout=30,
                cwd="/opt/agent_runtime",
            )
            session_id = str(uuid.uuid4())
            headers = {"Authorization": f"Bearer {token}"}
            body = {
                "session_id": session_id,
                "prompt": "[[e2b-check]] write the file",
                "options": {"allowed_tools": ["Bash"], "max_turns": 5},
                "env": {
                    "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{MODEL_PORT}",
                    "ANTHROPIC_API_KEY": "e2b-check",
                    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                },
                # Nothing listens there: the runtime spools the lines, the run goes on.
                "ingest": {"url": "http://127.0.0.1:9/api/internal/logs/append", "token": "x"},
            }
            res = httpx.post(f"{handle.runtime_url}/execute", json=body, headers=headers)
            res.raise_for_status()
            deadline = time.monotonic() + 180
            status: dict = {}
            while time.monotonic() < deadline:
                status = httpx.get(
                    f"{handle.runtime_url}/sessions/{session_id}", headers=headers
                ).json()
                if status.get("status") in FINAL:
                    break
                time.sleep(0.5)
            if status.get("status") != "completed":
                raise RuntimeError(f"the run ended {status}")
            written = backend.read_file(external_id, "/workspace/check.txt").decode().strip()
            if written != "from-e2b":
                raise RuntimeError(f"the Bash tool wrote {written!r}")
            return "a Bash tool wrote /workspace/check.txt"

        check.step("prompt", prompt)
        check.step("pause", lambda: backend.pause(external_id) and "")

        def resume() -> str:
            backend.connect(external_id)
            wait_health(handle.runtime_url, token)
            kept = backend.read_file(external_id, "/workspace/check.txt").decode().strip()
            if kept != "from-e2b":
                raise RuntimeError("the file did not survive the pause")
            return "file kept"

        check.step("resume", resume)
        check.step("stop", lambda: backend.kill(external_id))
        external_id = ""
    except Exception:
        return 1
    finally:
        if external_id:
            backend.kill(external_id)
        _delete_template(name, api_key)
        print(f"e2b-check: {time.monotonic() - check.started:.1f}s in all")
    print("e2b-check: passed")
    return 0


def _delete_template(name: str, api_key: str) -> None:
    from e2b import Sandbox

    try:
        # A snapshot is a template at E2B's API; this is its delete route.
        Sandbox.delete_snapshot(name, api_key=api_key)
    except Exception as exc:
        print(f"e2b-check: could not delete template {name} ({exc}); delete it in the dashboard")


if __name__ == "__main__":
    sys.exit(main())
