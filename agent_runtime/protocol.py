"""The wire contract between the studio and the runtime: the one place that defines it.

Both programs import this module: the runtime to validate what it receives and to shape what
it ships, the studio to build what it sends and to name the statuses and line kinds it
stores. It is standard library only (no Django, no SDK), so either side can import it
cheaply; ``docs/protocol.md`` describes the same contract in prose.

- ``POST /execute``: the studio builds the body with ``execute_request()``; the runtime
  checks it with ``validate_execute()`` (the same rules, so a body the studio builds is one
  the runtime accepts: tests round-trip it).
- ``POST <studio>/api/internal/logs/append``: the runtime ships ``ingest_batch()`` bodies of
  ``ingest_line()`` lines; the studio validates them (``logs/serializers.parse_append``)
  against ``LINE_KINDS`` and ``MAX_BATCH_LINES`` from here.
- ``GET /health`` reports ``PROTOCOL_VERSION``; the studio refuses a runtime that reports
  another one (an E2B template built from older code).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

# Raise it when a change would make one side misread the other (a renamed field, a new
# required one). Adding an optional field does not: unknown keys are ignored both ways.
PROTOCOL_VERSION = 1

INGEST_PATH = "/api/internal/logs/append"

# ---- statuses and line kinds -----------------------------------------------------------

# A session's life: the studio creates it `queued` and marks it `starting` when it hands the
# run over; the runtime reports `running` and one final status.
SESSION_STATUSES = ("queued", "starting", "running", "completed", "failed", "cancelled")
FINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})

# What a log line is; the terminal colours and folds lines by kind.
LINE_KINDS = (
    "status",
    "system",
    "assistant",
    "thinking",
    "tool_use",
    "tool_result",
    "result",
    "stdout",
    "stderr",
    "error",
)
LINE_FIELDS = ("seq", "kind", "text", "data", "ts")
# The most lines the studio takes in one append; the shipper sends at most this many.
MAX_BATCH_LINES = 1000

# ---- the execute request ---------------------------------------------------------------

SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
DEFAULT_TOOLS = ("Skill", "Read", "Write", "Edit", "Bash", "Grep", "Glob")
# The Claude Agent SDK's PermissionMode values (claude_agent_sdk.types.PermissionMode; a test
# keeps the two equal, so an SDK upgrade that adds or drops one fails loudly).
PERMISSION_MODES = ("default", "acceptEdits", "plan", "bypassPermissions", "dontAsk", "auto")
# An unattended sandbox has nobody to answer a permission prompt, and the sandbox itself is
# the security boundary, so tools run without asking unless the agent says otherwise.
DEFAULT_PERMISSION_MODE = "bypassPermissions"
DEFAULT_MAX_TURNS = 50
DEFAULT_TIMEOUT_SECONDS = 1800  # wall-clock limit of one run
DEFAULT_OPTIONS: Mapping[str, Any] = {
    "system_prompt": "",
    "model": "",
    "allowed_tools": list(DEFAULT_TOOLS),
    "max_turns": DEFAULT_MAX_TURNS,
    "permission_mode": DEFAULT_PERMISSION_MODE,
    "resume": None,
    "timeout_seconds": DEFAULT_TIMEOUT_SECONDS,
    # Problems the studio found before the run (e.g. browser automation missing): shown as
    # the run's first lines so whoever reads the log sees the cause and the fix.
    "notices": [],
}


class ValidationError(Exception):
    """A malformed execute body; ``field`` names the offending field (dotted path)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def execute_request(
    *,
    session_id: str,
    prompt: str,
    options: Mapping[str, Any],
    env: Mapping[str, str],
    ingest: Mapping[str, str],
) -> dict[str, Any]:
    """The ``POST /execute`` body, checked by the rules the runtime applies.

    ``options`` holds keys of ``DEFAULT_OPTIONS`` (a missing one takes its default there);
    ``ingest`` is ``{"url", "token"}``. Raises ValidationError for a value the runtime would
    refuse, and ValueError for an option key it does not know (a bug in the caller).
    """
    unknown = set(options) - set(DEFAULT_OPTIONS)
    if unknown:
        raise ValueError(f"unknown execute options: {', '.join(sorted(unknown))}")
    return validate_execute(
        {
            "session_id": session_id,
            "prompt": prompt,
            "options": dict(options),
            "env": dict(env),
            "ingest": dict(ingest),
        }
    )


def _require(condition: bool, field: str, message: str) -> None:
    if not condition:
        raise ValidationError(field, message)


def validate_execute(body: Any) -> dict[str, Any]:
    """Check an execute body and return it normalised (options with defaults filled in).

    Unknown option keys are ignored, so an older runtime image keeps working with a newer
    studio.
    """
    _require(isinstance(body, dict), "body", "the body must be a JSON object")
    session_id = body.get("session_id")
    _require(isinstance(session_id, str), "session_id", "session_id is required (a string)")
    _require(
        bool(SESSION_ID.match(session_id)),
        "session_id",
        "session_id may hold letters, digits, '-', '_' and '.' (at most 128)",
    )
    prompt = body.get("prompt")
    _require(isinstance(prompt, str) and prompt.strip() != "", "prompt", "prompt is required")
    options = body.get("options") or {}
    _require(isinstance(options, dict), "options", "options must be an object")
    env = body.get("env") or {}
    _require(isinstance(env, dict), "env", "env must be an object of strings")
    for name, value in env.items():
        _require(isinstance(value, str) and name != "", f"env.{name}", "env values are strings")
    ingest = body.get("ingest")
    _require(isinstance(ingest, dict), "ingest", "ingest {url, token} is required")
    url = ingest.get("url")
    _require(
        isinstance(url, str) and urlparse(url).scheme in ("http", "https"),
        "ingest.url",
        "ingest.url must be an http(s) URL",
    )
    _require(isinstance(ingest.get("token"), str), "ingest.token", "ingest.token is required")
    return {
        "session_id": session_id,
        "prompt": prompt,
        "options": _validate_options(options),
        "env": env,
        "ingest": {"url": url, "token": ingest["token"]},
    }


def _validate_options(options: dict[str, Any]) -> dict[str, Any]:
    merged = {k: options.get(k) for k in DEFAULT_OPTIONS}
    for key, default in DEFAULT_OPTIONS.items():
        if merged[key] is None:
            merged[key] = list(default) if isinstance(default, list) else default
    for key in ("system_prompt", "model"):
        _require(isinstance(merged[key], str), f"options.{key}", f"{key} must be a string")
    tools = merged["allowed_tools"]
    _require(
        isinstance(tools, list) and all(isinstance(t, str) and t for t in tools),
        "options.allowed_tools",
        "allowed_tools must be a list of tool names",
    )
    max_turns = merged["max_turns"]
    _require(
        isinstance(max_turns, int) and not isinstance(max_turns, bool) and max_turns > 0,
        "options.max_turns",
        "max_turns must be a positive integer",
    )
    _require(
        merged["permission_mode"] in PERMISSION_MODES,
        "options.permission_mode",
        f"permission_mode must be one of {', '.join(PERMISSION_MODES)}",
    )
    _require(
        merged["resume"] is None or (isinstance(merged["resume"], str) and merged["resume"]),
        "options.resume",
        "resume must be a Claude session id",
    )
    timeout = merged["timeout_seconds"]
    _require(
        isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0,
        "options.timeout_seconds",
        "timeout_seconds must be a positive number",
    )
    notices = merged["notices"]
    _require(
        isinstance(notices, list) and all(isinstance(n, str) and n for n in notices),
        "options.notices",
        "notices must be a list of strings",
    )
    return merged


# ---- the ingest body -------------------------------------------------------------------


def ingest_line(*, seq: int, kind: str, text: str, data: Any, ts: str) -> dict[str, Any]:
    """One line as it travels: ``seq`` counts from 1 without gaps per session, ``kind`` is
    one of LINE_KINDS, ``text`` is what the terminal shows (ANSI colour allowed), ``data``
    the structured message (any JSON), ``ts`` when the runtime made it (ISO 8601, UTC)."""
    return {"seq": seq, "kind": kind, "text": text, "data": data, "ts": ts}


def ingest_batch(
    *, session_id: str, lines: list[dict[str, Any]], status: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """An append body: at most MAX_BATCH_LINES lines in seq order, and optionally the
    session's state as of the last of them (``{"status", "claude_session_id"?, ...}``; with
    a final status, the result record: ``num_turns``, ``total_cost_usd``, ``usage``,
    ``error``). Appends are idempotent on (session, seq), so a batch may be resent."""
    body: dict[str, Any] = {"session_id": session_id, "lines": lines}
    if status:
        body["status"] = dict(status)
    return body
