"""Rendering SDK messages as terminal lines."""

from __future__ import annotations

from claude_agent_sdk import (
    AssistantMessage,
    SystemMessage,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)

from agent_runtime.render import render_message, render_result, strip_ansi, tool_summary


def test_tool_calls_show_their_key_argument():
    assert strip_ansi(tool_summary("Bash", {"command": "ls -la"})) == "Bash(ls -la)"
    assert strip_ansi(tool_summary("Write", {"file_path": "/w/a.py"}, cwd="/w")) == "Write(a.py)"
    assert strip_ansi(tool_summary("Read", {"file_path": "/etc/hosts"}, cwd="/w")) == (
        "Read(/etc/hosts)"
    )
    assert strip_ansi(tool_summary("Grep", {"pattern": "TODO"})) == "Grep(TODO)"
    assert strip_ansi(tool_summary("mcp__x__y", {"q": "hi"})) == "mcp__x__y(hi)"


def test_long_tool_results_are_indented_and_cut():
    message = UserMessage(
        content=[ToolResultBlock(tool_use_id="t", content="\n".join(map(str, range(40))))]
    )
    [(kind, text, data)] = render_message(message)
    assert kind == "tool_result"
    assert text.startswith("  ⎿  0\n     1\n")
    assert text.endswith("… (+28 lines)")
    assert data["type"] == "UserMessage"
    assert data["content"][0]["content"].endswith("39")  # data keeps everything


def test_failed_tool_results_are_red():
    message = UserMessage(content=[ToolResultBlock(tool_use_id="t", content="no", is_error=True)])
    assert render_message(message)[0][1].startswith("\x1b[31m")


def test_assistant_blocks_each_become_a_line():
    message = AssistantMessage(
        content=[
            ThinkingBlock(thinking="hmm", signature="s"),
            TextBlock(text="Hello"),
            ToolUseBlock(id="t", name="Bash", input={"command": "pwd"}),
        ],
        model="m",
    )
    lines = render_message(message)
    assert [k for k, _, _ in lines] == ["thinking", "assistant", "tool_use"]
    assert lines[0][1].startswith("\x1b[2m")  # thinking is dimmed
    assert lines[1][1] == "● Hello"
    assert strip_ansi(lines[2][1]) == "● Bash(pwd)"


def test_an_api_error_message_is_a_red_error_line():
    message = AssistantMessage(
        content=[TextBlock(text="API Error: 500")], model="m", error="unknown"
    )
    [(kind, text, _)] = render_message(message)
    assert kind == "error" and text.startswith("\x1b[31m")


def test_system_init_names_the_session():
    message = SystemMessage(subtype="init", data={"session_id": "abc", "model": "m", "tools": []})
    [(kind, text, data)] = render_message(message)
    assert kind == "system" and "abc" in text and data["data"]["session_id"] == "abc"


def test_the_result_line_has_status_turns_duration_and_cost():
    text = render_result(
        {"status": "completed", "num_turns": 2, "duration_ms": 1500, "total_cost_usd": 0.0123}
    )
    assert strip_ansi(text) == "✓ completed · 2 turns · 1.5s · $0.0123"
    failed = render_result({"status": "failed", "error": "boom"})
    assert failed.startswith("\x1b[31m") and "boom" in failed
