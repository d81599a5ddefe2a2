"""The wire contract: it speaks the SDK's vocabulary, its builder and its validator agree, the
runtime reports its version, and the studio's notices ride in the options. (The studio's
side of the round trips is in sandboxes/tests/test_wire_protocol.py and
logs/tests/test_ingest_protocol.py.)"""

from __future__ import annotations

import subprocess
import sys
import typing

import pytest

from agent_runtime import protocol
from agent_runtime.render import render_message
from agent_runtime.shipper import Shipper
from agent_runtime.state import SessionDir
from agent_runtime.tests.helpers import INGEST_TOKEN, REPO, RuntimeProcess

INGEST = {"url": "http://127.0.0.1:9/api/internal/logs/append", "token": "t"}


def test_its_permission_modes_are_the_sdks():
    from claude_agent_sdk.types import PermissionMode

    assert set(protocol.PERMISSION_MODES) == set(typing.get_args(PermissionMode))


def test_a_built_request_is_one_the_validator_accepts_unchanged():
    options = {
        "system_prompt": "Be brief.",
        "model": "claude-haiku-4-5",
        "allowed_tools": ["Read", "Bash"],
        "max_turns": 7,
        "permission_mode": "dontAsk",
        "resume": "c-123",
        "timeout_seconds": 60,
    }
    body = protocol.execute_request(
        session_id="s-1", prompt="hi", options=options, env={"A": "1"}, ingest=INGEST
    )
    assert protocol.validate_execute(body) == body
    assert body["options"] == {**options, "notices": []}


def test_a_missing_option_takes_the_protocol_default():
    body = protocol.execute_request(
        session_id="s-1", prompt="hi", options={"model": "m"}, env={}, ingest=INGEST
    )
    assert body["options"] == {**protocol.DEFAULT_OPTIONS, "model": "m"}
    assert body["options"]["max_turns"] == 50
    assert body["options"]["timeout_seconds"] == 1800
    assert body["options"]["permission_mode"] == "bypassPermissions"
    assert body["options"]["allowed_tools"] == list(protocol.DEFAULT_TOOLS)


def test_the_builder_refuses_what_the_runtime_would_refuse():
    with pytest.raises(protocol.ValidationError) as caught:
        protocol.execute_request(
            session_id="s-1",
            prompt="hi",
            options={"permission_mode": "yolo"},
            env={},
            ingest=INGEST,
        )
    assert caught.value.field == "options.permission_mode"
    with pytest.raises(ValueError, match="maxturns"):
        protocol.execute_request(
            session_id="s-1", prompt="hi", options={"maxturns": 3}, env={}, ingest=INGEST
        )


def test_defaults_are_not_shared_between_requests():
    first = protocol.validate_execute({"session_id": "a", "prompt": "p", "ingest": INGEST})
    first["options"]["allowed_tools"].append("WebFetch")
    second = protocol.validate_execute({"session_id": "b", "prompt": "p", "ingest": INGEST})
    assert second["options"]["allowed_tools"] == list(protocol.DEFAULT_TOOLS)


def test_the_renderer_emits_only_protocol_line_kinds():
    class SystemMessage:
        subtype, data = "init", {"session_id": "c", "model": "m", "tools": [], "cwd": "/w"}

    kinds = {kind for kind, _, _ in render_message(SystemMessage(), "/w")}
    assert kinds and kinds <= set(protocol.LINE_KINDS)


def test_the_shipper_never_sends_more_lines_than_the_studio_takes(tmp_path):
    session = SessionDir(tmp_path, "s-1")
    session.create()
    shipper = Shipper(session, {"url": "", "token": INGEST_TOKEN}, max_lines=5000)
    assert shipper.max_lines == protocol.MAX_BATCH_LINES


def test_health_reports_the_protocol_version(tmp_path):
    rt = RuntimeProcess(tmp_path, "http://127.0.0.1:9", {"AGENT_RUNTIME_SPARE": "0"}).start()
    try:
        health = rt.request("GET", "/health").json()
    finally:
        rt.stop()
    assert health["protocol"] == protocol.PROTOCOL_VERSION


def test_the_runtime_and_its_protocol_import_no_django():
    code = (
        "import sys, agent_runtime.protocol, agent_runtime.server, agent_runtime.runner\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('django', 'rest_framework', 'channels', 'agents', 'sandboxes', 'logs', 'studio'))\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def body(**options):
    return {"session_id": "s1", "prompt": "hi", "options": options, "ingest": INGEST}


def test_notices_default_to_none_and_keep_their_order():
    assert protocol.validate_execute(body())["options"]["notices"] == []
    assert protocol.validate_execute(body(notices=["a", "b"]))["options"]["notices"] == ["a", "b"]


@pytest.mark.parametrize("bad", ["one string", [1], [""], {"a": 1}])
def test_it_refuses_notices_that_are_not_a_list_of_strings(bad):
    with pytest.raises(protocol.ValidationError) as caught:
        protocol.validate_execute(body(notices=bad))
    assert caught.value.field == "options.notices"
