"""Turn Claude Agent SDK messages into terminal log lines, the way Claude Code prints them.

Pure functions: no I/O, no SDK import at module load (messages are recognised by class name,
so this module also renders dicts and is cheap to import before the SDK is loaded).
A rendered line is a ``(kind, text, data)`` tuple; the shipper adds ``seq`` and ``ts``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Any

DIM, RED, GREEN, YELLOW, BOLD, ITALIC, RESET = (
    "\x1b[2m",
    "\x1b[31m",
    "\x1b[32m",
    "\x1b[33m",
    "\x1b[1m",
    "\x1b[3m",
    "\x1b[0m",
)
RESULT_MAX_LINES = 12  # tool output shown before "… (+N lines)"
LINE_MAX_CHARS = 400  # one terminal line past this is cut
DATA_MAX_CHARS = 64_000  # strings kept in `data`; a log line is not a file store

Line = tuple[str, str, Any]


def dim(text: str) -> str:
    """Wrap text in the ANSI dim style."""
    return f"{DIM}{text}{RESET}"


def red(text: str) -> str:
    """Wrap text in ANSI red (errors)."""
    return f"{RED}{text}{RESET}"


def yellow(text: str) -> str:
    """Wrap text in ANSI yellow (warnings)."""
    return f"{YELLOW}{text}{RESET}"


def to_data(obj: Any) -> Any:
    """A JSON-safe copy of an SDK message (dataclass → dict with its ``type``), long strings cut."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {f.name: to_data(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        return {"type": type(obj).__name__, **fields}
    if isinstance(obj, dict):
        return {str(k): to_data(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_data(v) for v in obj]
    if isinstance(obj, str) and len(obj) > DATA_MAX_CHARS:
        return obj[:DATA_MAX_CHARS] + f"… (+{len(obj) - DATA_MAX_CHARS} chars)"
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    return repr(obj)


def _one_line(text: str, limit: int = 100) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short_path(path: str, cwd: str | None) -> str:
    if cwd and path.startswith(cwd.rstrip("/") + "/"):
        return os.path.relpath(path, cwd)
    return path


def tool_summary(name: str, tool_input: dict[str, Any], cwd: str | None = None) -> str:
    """The key argument of a tool call, as Claude Code shows it: ``Bash(ls -la)``."""
    tool_input = tool_input or {}
    if name == "Bash":
        arg = tool_input.get("command", "")
    elif name in ("Read", "Write", "Edit", "MultiEdit", "NotebookEdit"):
        arg = _short_path(tool_input.get("file_path") or tool_input.get("notebook_path", ""), cwd)
    elif name in ("Grep", "Glob"):
        arg = tool_input.get("pattern", "")
        if tool_input.get("path"):
            arg += f", path: {_short_path(tool_input['path'], cwd)}"
    elif name == "WebFetch":
        arg = tool_input.get("url", "")
    elif name == "WebSearch":
        arg = tool_input.get("query", "")
    elif name == "Skill":
        arg = tool_input.get("skill") or tool_input.get("command", "")
    elif name in ("Task", "Agent"):
        arg = tool_input.get("description", "")
    elif name == "TodoWrite":
        arg = f"{len(tool_input.get('todos', []))} todos"
    else:
        first = next((v for v in tool_input.values() if isinstance(v, str)), None)
        arg = first if first is not None else json.dumps(tool_input)
    return f"{BOLD}{name}{RESET}({_one_line(arg)})"


def _result_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for item in content:
        if isinstance(item, dict) and item.get("type") == "text":
            parts.append(item.get("text", ""))
        elif isinstance(item, dict) and item.get("type") == "image":
            parts.append("[image]")
        else:
            parts.append(json.dumps(item) if not isinstance(item, str) else item)
    return "\n".join(parts)


def format_tool_result(content: Any, is_error: bool = False) -> str:
    """Indent a tool result under its call (``  ⎿  ...``), cut past RESULT_MAX_LINES."""
    lines = _result_text(content).rstrip("\n").splitlines() or ["(no output)"]
    shown = [ln if len(ln) <= LINE_MAX_CHARS else ln[:LINE_MAX_CHARS] + "…" for ln in lines]
    shown = shown[:RESULT_MAX_LINES]
    if len(lines) > RESULT_MAX_LINES:
        shown.append(f"… (+{len(lines) - RESULT_MAX_LINES} lines)")
    text = "  ⎿  " + "\n     ".join(shown)
    return red(text) if is_error else text


def _block_lines(block: Any, message_data: Any, cwd: str | None, error: bool) -> list[Line]:
    kind = type(block).__name__
    if kind == "TextBlock":
        if error:
            return [("error", red(f"● {block.text}"), message_data)]
        return [("assistant", f"● {block.text}", message_data)]
    if kind == "ThinkingBlock":
        return [("thinking", f"{DIM}{ITALIC}✻ Thinking…\n{block.thinking}{RESET}", message_data)]
    if kind in ("ToolUseBlock", "ServerToolUseBlock"):
        return [("tool_use", f"● {tool_summary(block.name, block.input, cwd)}", message_data)]
    if kind == "ToolResultBlock":
        return [
            ("tool_result", format_tool_result(block.content, bool(block.is_error)), message_data)
        ]
    if kind == "ServerToolResultBlock":
        return [("tool_result", format_tool_result(json.dumps(block.content)), message_data)]
    return [("system", dim(f"[{kind}]"), message_data)]


def render_message(message: Any, cwd: str | None = None) -> list[Line]:
    """Render one SDK message as zero or more ``(kind, text, data)`` lines.

    ``ResultMessage`` is not rendered here: the runner owns the final result line.
    """
    kind = type(message).__name__
    data = to_data(message)
    if kind == "AssistantMessage":
        error = message.error is not None
        lines = [ln for b in message.content for ln in _block_lines(b, data, cwd, error)]
        if error and not lines:
            lines = [("error", red(f"● API error: {message.error}"), data)]
        return lines
    if kind == "UserMessage":
        if isinstance(message.content, str):
            return [("system", dim(f"> {_one_line(message.content, 200)}"), data)]
        return [ln for b in message.content for ln in _block_lines(b, data, cwd, False)]
    if kind == "SystemMessage":
        return [_system_line(message.subtype, message.data, data)]
    if kind in ("ResultMessage", "StreamEvent"):
        return []
    if kind == "RateLimitEvent":
        info = message.rate_limit_info
        status = info.get("status") if isinstance(info, dict) else getattr(info, "status", "")
        return [("system", f"{YELLOW}⚠ rate limit: {status}{RESET}", data)]
    return [("system", dim(f"[{kind}]"), data)]


def _system_line(subtype: str, payload: dict[str, Any], data: Any) -> Line:
    if subtype == "init":
        tools = payload.get("tools") or []
        text = (
            f"● Session {payload.get('session_id', '?')} · model {payload.get('model', '?')}"
            f" · cwd {payload.get('cwd', '?')} · {len(tools)} tools"
        )
        return ("system", dim(text), data)
    if subtype == "api_retry":
        attempt = payload.get("attempt", "?")
        of = payload.get("max_retries", "?")
        error = payload.get("error") or payload.get("error_status") or ""
        text = f"⚠ API retry {attempt}/{of} {_one_line(str(error), 200)}".rstrip()
        return ("system", f"{YELLOW}{text}{RESET}", data)
    return ("system", dim(f"· {subtype}"), data)


def render_result(result: dict[str, Any]) -> str:
    """The final line: ``✓ completed · 2 turns · 0.6s · $0.0221`` (red when it failed)."""
    status = result.get("status", "?")
    parts = [status]
    if result.get("num_turns") is not None:
        parts.append(f"{result['num_turns']} turns")
    if result.get("duration_ms") is not None:
        parts.append(f"{result['duration_ms'] / 1000:.1f}s")
    if result.get("total_cost_usd") is not None:
        parts.append(f"${result['total_cost_usd']:.4f}")
    if result.get("error"):
        parts.append(_one_line(result["error"], 300))
    text = " · ".join(parts)
    if status == "completed":
        return f"{GREEN}✓ {text}{RESET}"
    if status == "cancelled":
        return f"{YELLOW}■ {text}{RESET}"
    return red(f"✗ {text}")


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def strip_ansi(text: str) -> str:
    """The text without ANSI colour codes (for plain-text views and tests)."""
    return _ANSI.sub("", text)
