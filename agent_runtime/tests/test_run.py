"""End to end: the real server, the real SDK and CLI, the scripted model, a stand-in ingest."""

from __future__ import annotations

import json

from agent_runtime.procs import session_processes
from agent_runtime.render import strip_ansi
from agent_runtime.tests.helpers import wait_for

BASH_FILE = {
    "marker": "[[bash-file]]",
    "turns": [
        [
            {"type": "thinking", "thinking": "The user wants a file."},
            {"type": "text", "text": "I'll create the file."},
            {
                "type": "tool_use",
                "name": "Bash",
                "input": {"command": "echo hello > out.txt && seq 1 30"},
            },
        ],
        [{"type": "text", "text": "Created out.txt."}],
    ],
}


def test_bash_run_writes_the_file_and_ships_every_line(runtime, model, receiver):
    model.add_script(BASH_FILE)
    response = runtime.execute("s-bash", "[[bash-file]] write a file", receiver)
    assert response.status_code == 202, response.text
    assert response.json()["session_id"] == "s-bash"

    result = wait_for(lambda: receiver.result("s-bash"), timeout=30)
    assert (runtime.workspace / "out.txt").read_text() == "hello\n"
    lines = receiver.session_lines("s-bash")
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    kinds = [line["kind"] for line in lines]
    assert kinds[0] == "status" and kinds[-1] == "result"
    assert "tool_use" in kinds and "tool_result" in kinds
    thinking = next(line for line in lines if line["kind"] == "thinking")
    assert "\x1b[2m" in thinking["text"] and "The user wants a file." in thinking["text"]
    tool_use = next(line for line in lines if line["kind"] == "tool_use")
    assert "Bash(echo hello > out.txt && seq 1 30)" in strip_ansi(tool_use["text"])
    tool_result = next(line for line in lines if line["kind"] == "tool_result")
    assert tool_result["text"].startswith("  ⎿  1")
    assert "… (+18 lines)" in tool_result["text"]
    assert any(x["kind"] == "assistant" and "Created out.txt." in x["text"] for x in lines)
    data = result["data"]
    assert data["status"] == "completed" and data["is_error"] is False
    assert data["num_turns"] == 2
    assert data["total_cost_usd"] > 0
    assert data["usage"]["input_tokens"] > 0
    assert data["claude_session_id"]
    session = runtime.session("s-bash")
    assert session["status"] == "completed"
    assert session["claude_session_id"] == data["claude_session_id"]
    wait_for(lambda: runtime.session("s-bash")["last_seq_shipped"] == len(lines))
    assert receiver.statuses["s-bash"][-1]["status"] == "completed"


SECOND = {"marker": "[[second]]", "turns": [[{"type": "text", "text": "Second answer."}]]}


def test_resume_sends_the_earlier_turns_to_the_model(runtime, model, receiver):
    model.add_script(BASH_FILE)
    model.add_script(SECOND)
    assert runtime.execute("s-first", "[[bash-file]] write a file", receiver).status_code == 202
    first = wait_for(lambda: receiver.result("s-first"), timeout=30)["data"]
    claude_id = first["claude_session_id"]
    before = len(model.messages_requests())

    response = runtime.execute("s-follow", "[[second]] and now?", receiver, resume=claude_id)
    assert response.status_code == 202
    follow = wait_for(lambda: receiver.result("s-follow"), timeout=30)["data"]
    assert follow["status"] == "completed"
    assert follow["claude_session_id"] == claude_id

    sent = model.messages_requests()[before:]
    assert sent, "the follow-up never reached the model"
    history = json.dumps(sent[0]["messages"])
    assert "I'll create the file." in history
    assert "echo hello > out.txt" in history
    assert "[[second]] and now?" in history
    assert any("Second answer." in line["text"] for line in receiver.session_lines("s-follow"))


BOOM = {
    "marker": "[[boom]]",
    "turns": [{"error": {"status": 500, "type": "api_error", "message": "scripted meltdown"}}],
}


def test_model_http_500_fails_the_session_with_a_red_error_line(runtime, model, receiver):
    model.add_script(BOOM)
    assert runtime.execute("s-boom", "[[boom]] try", receiver).status_code == 202
    result = wait_for(lambda: receiver.result("s-boom"), timeout=45)
    data = result["data"]
    assert data["status"] == "failed" and data["is_error"] is True
    assert data["error"]
    assert "\x1b[31m" in result["text"]
    errors = [x for x in receiver.session_lines("s-boom") if x["kind"] == "error"]
    assert errors and all("\x1b[31m" in x["text"] for x in errors)
    assert any("500" in strip_ansi(x["text"]) for x in errors)
    assert runtime.session("s-boom")["status"] == "failed"
    assert receiver.statuses["s-boom"][-1]["status"] == "failed"


HANG = {
    "marker": "[[hang]]",
    "turns": [
        [
            {
                "type": "tool_use",
                "name": "Bash",
                "input": {"command": "echo started; tail -f /dev/null"},
            }
        ]
    ],
}


def test_the_wall_clock_limit_ends_a_hanging_run(runtime, model, receiver):
    model.add_script(HANG)
    response = runtime.execute("s-hang", "[[hang]] wait", receiver, timeout_seconds=3)
    assert response.status_code == 202
    result = wait_for(lambda: receiver.result("s-hang"), timeout=30)
    assert result["data"]["status"] == "failed"
    assert "timed out after 3 s" in result["data"]["error"]
    pid = runtime.session("s-hang")["pid"]
    wait_for(lambda: not session_processes("s-hang", pid), timeout=15)
