"""The scripted model server on its own (the end-to-end tests drive it with the real CLI)."""

from __future__ import annotations

import json

import httpx

from agent_runtime.scripted_model import ScriptedModel

SCRIPT = {
    "marker": "[[two]]",
    "turns": [
        [{"type": "tool_use", "name": "Write", "input": {"file_path": "a", "content": "b"}}],
        {"error": {"status": 529, "type": "overloaded_error", "message": "busy", "times": 1}},
    ],
}


def post(url: str, body: dict) -> httpx.Response:
    return httpx.post(f"{url}/v1/messages?beta=true", json=body, timeout=10)


def test_it_streams_a_scripted_turn_as_sse(model):
    model.add_script(SCRIPT)
    body = {"stream": True, "model": "m", "messages": [{"role": "user", "content": "[[two]]"}]}
    response = post(model.base_url, body)
    assert response.headers["content-type"] == "text/event-stream"
    events = [json.loads(x[6:]) for x in response.text.splitlines() if x.startswith("data: ")]
    assert [e["type"] for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[1]["content_block"]["name"] == "Write"
    assert events[4]["delta"]["stop_reason"] == "tool_use"
    assert model.messages_requests()[0]["model"] == "m"


def test_turns_follow_the_conversation_and_errors_can_be_limited(model):
    model.add_script(SCRIPT)
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "[[two]]"}]},
        {"role": "system", "content": "ignored"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "Write"}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]},
    ]
    first = post(model.base_url, {"messages": messages})
    assert first.status_code == 529 and first.json()["error"]["type"] == "overloaded_error"
    second = post(model.base_url, {"messages": messages})  # `times: 1`: now past the error
    assert second.status_code == 200


def test_without_a_matching_script_it_echoes(model):
    prompt = "<system-reminder>noise</system-reminder>hello there"
    response = post(model.base_url, {"messages": [{"role": "user", "content": prompt}]})
    assert response.json()["content"] == [{"type": "text", "text": "Echo: hello there"}]


def test_it_can_be_started_standalone_with_scripts():
    model = ScriptedModel([SCRIPT], default={"turns": [[{"type": "text", "text": "default"}]]})
    url = model.start()
    try:
        response = post(url, {"messages": [{"role": "user", "content": "anything"}]})
        assert response.json()["content"][0]["text"] == "default"
    finally:
        model.stop()
