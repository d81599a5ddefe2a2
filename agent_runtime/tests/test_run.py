"""End to end: the real server, the real SDK and CLI, the scripted model, a stand-in ingest."""

from __future__ import annotations

from agent_runtime.render import strip_ansi
from agent_runtime.tests.helpers import wait_for

BASH_FILE = {
    "marker": "[[bash-file]]",
    "turns": [
        [
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
    print("\n".join(line["text"] for line in lines))
    assert "tool_use" in kinds and "tool_result" in kinds
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
