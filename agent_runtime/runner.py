"""The run process: one execute request, from the prompt to the last acknowledged log line.

Started by the server as ``python -m agent_runtime run --workspace DIR`` in a new session
(so its pid is its process group, and cancel can kill the whole tree). It imports the SDK,
then waits for the execute body on stdin (model credentials never touch the disk), so the
server can keep one warm in advance. It streams
``claude_agent_sdk.query()`` to its end under a wall-clock limit, renders every message as
log lines, and does not exit before the shipper has delivered them (or the drain deadline
passed, leaving the spool for the server to resend).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .procs import MARKER, kill_session
from .render import dim, red, render_message, render_result, yellow
from .shipper import Shipper, ssl_context
from .state import SessionDir, now_iso


def env_float(name: str, default: float) -> float:
    """A float setting from the environment (tests shorten the timings this way)."""
    value = os.environ.get(name)
    return float(value) if value else default


def shipper_for(session: SessionDir, ingest: dict[str, Any] | None) -> Shipper:
    """A shipper with the timings from the environment."""
    return Shipper(
        session,
        ingest,
        linger=env_float("AGENT_RUNTIME_LINGER", 0.05),
        backoff_cap=env_float("AGENT_RUNTIME_BACKOFF_CAP", 5.0),
    )


def drain_seconds() -> float:
    """How long a finished run keeps trying to deliver its lines before leaving them spooled."""
    return env_float("AGENT_RUNTIME_DRAIN_SECONDS", 600.0)


@dataclass
class Outcome:
    """What came out of one ``query()`` stream."""

    claude_session_id: str | None = None
    result: Any = None  # the SDK's ResultMessage
    error: str | None = None  # an exception raised by the SDK
    timed_out: bool = False
    error_lines: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def build_options(options: dict[str, Any], env: dict[str, str], workspace: Path, stderr: Any):
    """The ``ClaudeAgentOptions`` for an execute request's (validated) options and env."""
    from claude_agent_sdk import ClaudeAgentOptions

    allowed = options["allowed_tools"]
    # allowed_tools only pre-approves; `tools` is what the model is offered at all, so the
    # Agent's list really limits the agent even under bypassPermissions.
    offered = list(dict.fromkeys(t.split("(", 1)[0] for t in allowed))
    cli_env = dict(env)
    if os.geteuid() == 0:
        # The CLI refuses bypassPermissions as root unless told it is inside a sandbox,
        # which is exactly where we are.
        cli_env.setdefault("IS_SANDBOX", "1")
    # The agent's prompt is appended to Claude Code's own, which teaches the model its tools.
    system_prompt: dict[str, Any] = {"type": "preset", "preset": "claude_code"}
    if options["system_prompt"]:
        system_prompt["append"] = options["system_prompt"]
    return ClaudeAgentOptions(
        cwd=str(workspace),
        tools=offered,
        allowed_tools=allowed,
        system_prompt=system_prompt,
        model=options["model"] or None,
        max_turns=options["max_turns"],
        permission_mode=options["permission_mode"],
        resume=options["resume"],
        setting_sources=["project"],  # loads .claude/skills/*/SKILL.md from the workspace
        skills="all" if "Skill" in offered else None,
        env=cli_env,
        stderr=stderr,
    )


async def consume(request: dict[str, Any], workspace: Path, emit, on_session) -> Outcome:
    """Run ``query()`` to the end of its stream (or the wall-clock limit), emitting lines."""
    import anyio
    from claude_agent_sdk import query

    options = request["options"]
    outcome = Outcome(claude_session_id=options["resume"])

    def emit_counted(kind: str, text: str, data: Any, **kw: Any) -> None:
        outcome.error_lines += kind == "error"
        emit(kind, text, data, **kw)

    def on_stderr(line: str) -> None:
        emit("stderr", dim(line.rstrip("\n")), None)

    sdk_options = build_options(options, request["env"], workspace, on_stderr)
    timeout = options["timeout_seconds"]
    # At the deadline a timer kills the CLI and its tools (our process group), which ends the
    # stream at once; the cancel scope is the backstop (and the only tool when not detached).
    fired = threading.Event()
    timer = threading.Timer(timeout, lambda: (fired.set(), kill_stragglers()))
    timer.daemon = True
    timer.start()
    backstop = timeout + (5 if os.getpgrp() == os.getpid() else 0)
    with anyio.move_on_after(backstop) as scope:
        try:
            stream = query(prompt=request["prompt"], options=sdk_options)
            async with contextlib.aclosing(stream):
                async for message in stream:
                    kind = type(message).__name__
                    status = None
                    if kind == "SystemMessage" and message.subtype == "init":
                        outcome.claude_session_id = message.data.get("session_id")
                        on_session(outcome.claude_session_id)
                        status = {
                            "status": "running",
                            "claude_session_id": outcome.claude_session_id,
                        }
                    elif kind == "ResultMessage":
                        outcome.result = message
                        outcome.claude_session_id = message.session_id or outcome.claude_session_id
                    for line_kind, text, data in render_message(message, str(workspace)):
                        emit_counted(line_kind, text, data, status=status)
                        status = None
        except Exception as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
            data = {"type": "exception", "message": str(exc)}
            reported = outcome.result is not None and outcome.result.is_error
            if fired.is_set() or (reported and outcome.error_lines):
                # an echo of a timeout kill, or of an error result already shown in red
                emit_counted("stderr", dim(outcome.error), data)
            else:
                emit_counted("error", red(f"✗ {outcome.error}"), data)
    timer.cancel()
    outcome.timed_out = fired.is_set() or scope.cancel_called
    return outcome


def build_result(outcome: Outcome, options: dict[str, Any], wall_ms: int) -> dict[str, Any]:
    """The result record (the last line's data and the final status) for an outcome."""
    res = outcome.result
    result: dict[str, Any] = {
        "status": "completed",
        "is_error": False,
        "subtype": getattr(res, "subtype", None),
        "num_turns": getattr(res, "num_turns", None),
        "duration_ms": getattr(res, "duration_ms", None) or wall_ms,
        "total_cost_usd": getattr(res, "total_cost_usd", None),
        "usage": getattr(res, "usage", None),
        "claude_session_id": outcome.claude_session_id,
        "result": getattr(res, "result", None),
        "error": None,
    }
    if outcome.timed_out:
        result["error"] = f"timed out after {options['timeout_seconds']} s"
    elif res is not None and res.is_error:
        detail = res.result or "; ".join(res.errors or []) or res.subtype
        named = res.subtype not in (None, "success") and detail != res.subtype
        result["error"] = f"{res.subtype}: {detail}" if named else detail
    elif outcome.error:
        result["error"] = outcome.error
    elif res is None:
        result["error"] = "the SDK stream ended without a result"
    if result["error"]:
        result.update(status="failed", is_error=True)
    return result


def finish(session: SessionDir, shipper: Shipper, result: dict[str, Any]) -> None:
    """Write the result line, then the final status (in that order, so a reader that sees a
    final status.json always finds the result line in the spool)."""
    status = {**result, "finished_at": now_iso()}
    shipper.emit("result", render_result(result), result, status=status)
    session.update_status(
        status=result["status"],
        finished_at=status["finished_at"],
        result=result,
        error=result.get("error"),
        claude_session_id=result.get("claude_session_id"),
    )


def kill_stragglers(grace: float = 2.0) -> None:
    """Kill this run's other processes (the CLI, its tools, whatever they left running)."""
    me = os.getpid()
    leader = me if os.getpgrp() == me else None  # not detached: the group is not ours
    session_id = os.environ.get(MARKER)
    if leader or session_id:
        kill_session(session_id or "", leader, grace)


def run_session(session: SessionDir, shipper: Shipper, request: dict[str, Any], workspace: Path):
    """Run one execute request and write its final lines; returns the result record."""
    import anyio

    started = time.monotonic()
    session.update_status(status="running", started_at=now_iso())
    resume = request["options"]["resume"]
    note = f" · resuming {resume}" if resume else ""
    shipper.emit(
        "status",
        dim(f"▶ running · session {session.session_id}{note}"),
        {"status": "running", "resume": resume},
        status={"status": "running"},
    )
    for notice in request["options"]["notices"]:
        shipper.emit("system", yellow(f"⚠ {notice}"), {"type": "notice", "message": notice})
    try:
        outcome = anyio.run(
            consume,
            request,
            workspace,
            shipper.emit,
            lambda sid: session.update_status(claude_session_id=sid),
        )
    except Exception as exc:  # a bug of ours: still end the session properly
        outcome = Outcome(error=f"runtime error: {type(exc).__name__}: {exc}")
    if outcome.timed_out:
        kill_stragglers()  # whatever the timer missed (it may have raced a tool starting)
    result = build_result(outcome, request["options"], int((time.monotonic() - started) * 1000))
    if result["error"] and outcome.error_lines == 0:
        shipper.emit("error", red(f"✗ {result['error']}"), {"type": "error", **result})
    finish(session, shipper, result)
    return result


def main(workspace: str) -> int:
    """Entry point of the run process.

    It starts as the server's warm spare: it imports the SDK first, then waits for the
    execute body (plus ``session_dir``) on stdin. EOF without a body means the server went
    away before using it: exit quietly.
    """
    import claude_agent_sdk  # noqa: F401  (the slow import, done before the request comes)

    ssl_context()

    raw = sys.stdin.read()
    if not raw.strip():
        return 0
    request = json.loads(raw)
    with contextlib.suppress(OSError):  # undo the spare's nice (allowed as root only)
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    session_dir = Path(request.pop("session_dir"))
    session = SessionDir(session_dir.parent.parent, session_dir.name)
    os.environ[MARKER] = session.session_id  # inherited by the CLI and its tools: see procs
    log = os.open(session.path / "runner.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    session.write_pid(os.getpid())
    shipper = shipper_for(session, request.get("ingest")).start()
    try:
        run_session(session, shipper, request, Path(workspace))
    finally:
        delivered = shipper.close(drain_seconds())
    if not delivered:
        print("drain deadline passed; the spool is left for the server", file=sys.stderr)
    return 0
