"""The HTTP contract's bad-input answers, and token provisioning from a file."""

from __future__ import annotations

import httpx
import pytest

from agent_runtime.tests.helpers import TOKEN, Receiver, RuntimeProcess, wait_for


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """One server for the tests that start no run (no spare process: nothing to warm)."""
    rt = RuntimeProcess(
        tmp_path_factory.mktemp("api"), "http://127.0.0.1:9", {"AGENT_RUNTIME_SPARE": "0"}
    )
    rt.start()
    yield rt
    rt.stop()


STUCK = {
    "marker": "[[stuck]]",
    "turns": [[{"type": "tool_use", "name": "Bash", "input": {"command": "tail -f /dev/null"}}]],
}


def test_it_rejects_a_missing_or_wrong_token(api):
    assert api.request("GET", "/health", token=None).status_code == 401
    response = api.request("GET", "/health", token="nope")
    assert response.status_code == 401
    assert response.json()["error"] == "Unauthorized"
    response = api.request("POST", "/execute", token=None, content=b"not json")
    assert response.status_code == 401  # auth comes before looking at the body


def test_health_answers_with_version_and_activity(api):
    health = api.request("GET", "/health").json()
    assert health["status"] == "healthy" and health["version"]
    assert health["busy"] is False and health["sessions"] == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"session_id": None}, "session_id"),
        ({"session_id": "../etc"}, "session_id"),
        ({"prompt": ""}, "prompt"),
        ({"options": {"max_turns": "many"}}, "options.max_turns"),
        ({"options": {"permission_mode": "yolo"}}, "options.permission_mode"),
        ({"options": {"allowed_tools": "Bash"}}, "options.allowed_tools"),
        ({"options": {"timeout_seconds": -1}}, "options.timeout_seconds"),
        ({"env": {"A": 1}}, "env.A"),
        ({"ingest": None}, "ingest"),
        ({"ingest": {"url": "ftp://x", "token": "t"}}, "ingest.url"),
    ],
)
def test_it_names_the_bad_field_of_an_execute_body(api, change, field):
    body = {
        "session_id": "s-bad",
        "prompt": "hi",
        "options": {},
        "env": {},
        "ingest": {"url": "http://127.0.0.1:9/x", "token": "t"},
        **change,
    }
    response = api.request("POST", "/execute", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "ValidationError"
    assert response.json()["details"] == {"field": field}
    assert response.json()["message"]


def test_it_rejects_a_body_that_is_not_json(api):
    response = api.request("POST", "/execute", content=b"{oops")
    assert response.status_code == 400
    assert response.json()["details"] == {"field": "body"}


def test_unknown_sessions_and_routes_are_404(api):
    assert api.request("GET", "/sessions/nope").status_code == 404
    assert api.request("POST", "/sessions/nope/cancel").status_code == 404
    assert api.request("GET", "/sessions/..").status_code == 404
    response = api.request("GET", "/nowhere")
    assert response.status_code == 404 and response.json()["error"] == "NotFound"


def test_a_session_id_already_running_is_409(runtime, model, receiver):
    model.add_script(STUCK)
    assert runtime.execute("s-twice", "[[stuck]] go", receiver).status_code == 202
    response = runtime.execute("s-twice", "[[stuck]] again", receiver)
    assert response.status_code == 409
    assert response.json()["error"] == "SessionExists"
    assert runtime.request("POST", "/sessions/s-twice/cancel").status_code == 202


def test_a_token_file_provisions_the_token_after_boot(tmp_path, model):
    token_file = tmp_path / "token"
    rt = RuntimeProcess(tmp_path, model.base_url, {"RUNTIME_TOKEN": ""})
    rt.env["RUNTIME_TOKEN_FILE"] = str(token_file)
    rt.start(wait=False)
    try:
        first = wait_for(lambda: _try(rt), timeout=15)
        assert first.status_code == 503 and first.json()["error"] == "NotProvisioned"
        token_file.write_text(TOKEN + "\n")
        assert rt.request("GET", "/health").status_code == 200
        assert rt.request("GET", "/health", token="wrong").status_code == 401
        token_file.write_text("changed")  # read once, then cached
        assert rt.request("GET", "/health").status_code == 200
    finally:
        rt.stop()


def _try(rt: RuntimeProcess) -> httpx.Response | None:
    try:
        return rt.request("GET", "/health")
    except httpx.HTTPError:
        return None


def test_a_refused_batch_is_reported_not_retried_forever(runtime, model, receiver: Receiver):
    receiver.answer_status = 400
    assert runtime.execute("s-refused", "hello", receiver).status_code == 202
    wait_for(lambda: not runtime.session("s-refused")["alive"], timeout=30)
    session = runtime.session("s-refused")
    assert session["status"] == "completed"
    assert session["last_seq_shipped"] == session["last_seq"]  # settled, not pending forever
    rejected = runtime.state_dir / "sessions" / "s-refused" / "rejected.jsonl"
    assert "ingest_rejected" in rejected.read_text()  # the bug report line, kept locally
