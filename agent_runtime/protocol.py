"""The execute request: defaults and validation, shared by the server and the run process."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from .state import SESSION_ID

DEFAULT_TOOLS = ["Skill", "Read", "Write", "Edit", "Bash", "Grep", "Glob"]
PERMISSION_MODES = ("default", "acceptEdits", "plan", "bypassPermissions", "dontAsk", "auto")
# An unattended sandbox has nobody to answer a permission prompt, and the sandbox itself is
# the security boundary, so tools run without asking unless the agent says otherwise.
DEFAULT_OPTIONS: dict[str, Any] = {
    "system_prompt": "",
    "model": "",
    "allowed_tools": DEFAULT_TOOLS,
    "max_turns": 50,
    "permission_mode": "bypassPermissions",
    "resume": None,
    "timeout_seconds": 1800,
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
            merged[key] = default
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
