"""E2BBackend through the real `e2b` SDK, over HTTP, against the local E2B double."""

from __future__ import annotations

import logging
import time
import uuid

import httpx
import pytest
from e2b import Sandbox

from sandboxes.backends.base import (
    BackendError,
    CreateSpec,
    FileNotFoundInSandbox,
    PathOutsideWorkspace,
    SandboxGone,
)
from sandboxes.backends.e2b import E2BBackend
from sandboxes.tests.conftest import E2B_INSTALL_ID, agent_runtime_serves

TOKEN = "runtime-token-for-tests"


def spec(**overrides) -> CreateSpec:
    fields = {
        "sandbox_id": str(uuid.uuid4()),
        "agent_id": str(uuid.uuid4()),
        "runtime_token": TOKEN,
        "timeout_seconds": 120,
    }
    return CreateSpec(**(fields | overrides))


def wait_until(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


def test_it_creates_a_tagged_sandbox_whose_commands_see_the_env(e2b_backend, e2b_double):
    s = spec(env={"GREETING": "hello there"})

    handle = e2b_backend.create(s)

    sandbox = e2b_double.sandboxes[handle.external_id]
    assert sandbox.template_id == "agent-runtime"
    assert sandbox.metadata == {
        "install_id": E2B_INSTALL_ID,
        "agent_id": s.agent_id,
        "sandbox_id": s.sandbox_id,
    }
    assert sandbox.end_at - sandbox.started_at == pytest.approx(120, abs=1)
    result = e2b_backend.exec(handle.external_id, 'echo "$GREETING"', timeout=10)
    assert result.stdout == "hello there\n"


def test_it_uses_the_spec_template_over_the_default(e2b_backend, e2b_double):
    handle = e2b_backend.create(spec(template="bare"))

    assert e2b_double.sandboxes[handle.external_id].template_id == "bare"


def test_it_provisions_the_runtime_token_file_and_keeps_it_out_of_metadata(e2b_backend, e2b_double):
    handle = e2b_backend.create(spec(template="bare"))

    result = e2b_backend.exec(
        handle.external_id,
        "stat -c %a ~/.agent_runtime ~/.agent_runtime/token; cat ~/.agent_runtime/token",
        timeout=10,
    )
    assert result.stdout.splitlines() == ["700", "600", TOKEN]
    assert TOKEN not in str(e2b_double.sandboxes[handle.external_id].metadata)


@pytest.mark.parametrize(
    "template",
    [
        "standin",
        pytest.param(
            "agent-runtime",
            marks=pytest.mark.skipif(
                not agent_runtime_serves(), reason="agent_runtime serve is not written yet"
            ),
        ),
    ],
)
def test_the_runtime_answers_health_through_url_for(e2b_backend, template):
    handle = e2b_backend.create(spec(template=template))
    assert handle.runtime_url == e2b_backend.url_for(handle.external_id, 8080)

    def health():
        try:
            return httpx.get(
                f"{handle.runtime_url}/health",
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=2,
            )
        except httpx.TransportError:
            return None

    response = wait_until(lambda: (r := health()) is not None and r.status_code == 200 and r)
    assert response, "the runtime never answered /health"
    assert response.json()["status"] == "healthy"
    wrong = httpx.get(
        f"{handle.runtime_url}/health", headers={"Authorization": "Bearer nope"}, timeout=2
    )
    assert wrong.status_code == 401


def test_url_for_is_the_sdk_host_over_https_in_production():
    backend = E2BBackend(api_key="k", template_id="t", install_id="i", domain="e2b.app")

    assert backend.url_for("isbx123", 8080) == "https://8080-isbx123.e2b.app"


def test_exec_returns_stdout_stderr_and_exit_code(e2b_backend):
    handle = e2b_backend.create(spec(template="bare"))

    ok = e2b_backend.exec(handle.external_id, "echo out; echo err >&2; pwd", timeout=10)
    failed = e2b_backend.exec(handle.external_id, "echo partial; exit 3", timeout=10)

    assert (ok.stdout, ok.stderr, ok.exit_code, ok.timed_out) == (
        "out\n/workspace\n",
        "err\n",
        0,
        False,
    )
    assert (failed.stdout, failed.exit_code, failed.timed_out) == ("partial\n", 3, False)


def test_exec_honours_cwd_and_env(e2b_backend):
    handle = e2b_backend.create(spec(template="bare"))
    e2b_backend.exec(handle.external_id, "mkdir -p /workspace/sub", timeout=10)

    result = e2b_backend.exec(
        handle.external_id, 'pwd; echo "$X"', timeout=10, cwd="/workspace/sub", env={"X": "y"}
    )

    assert result.stdout == "/workspace/sub\ny\n"


def test_exec_kills_a_command_that_outlives_its_timeout(e2b_backend, e2b_double):
    handle = e2b_backend.create(spec(template="bare"))
    started = time.monotonic()

    result = e2b_backend.exec(handle.external_id, "echo begun; exec sleep 30", timeout=1)

    assert time.monotonic() - started < 5
    assert (result.timed_out, result.exit_code, result.stdout) == (True, 124, "begun\n")
    sandbox = e2b_double.sandboxes[handle.external_id]
    assert wait_until(
        lambda: not any("sleep 30" in " ".join(p.config.args) for p in sandbox.procs.values())
    ), "the timed-out command is still running"


def test_files_round_trip_binary_content_and_list(e2b_backend):
    handle = e2b_backend.create(spec(template="bare"))
    payload = bytes(range(256)) * 4

    e2b_backend.write_file(handle.external_id, "/workspace/data/blob.bin", payload)
    e2b_backend.write_file(handle.external_id, "/workspace/notes.txt", "héllo\n".encode())

    assert e2b_backend.read_file(handle.external_id, "/workspace/data/blob.bin") == payload
    entries = e2b_backend.list_dir(handle.external_id, "/workspace")
    assert sorted((e.name, e.path, e.is_dir) for e in entries) == [
        ("data", "/workspace/data", True),
        ("notes.txt", "/workspace/notes.txt", False),
    ]
    assert next(e for e in entries if e.name == "notes.txt").size == len("héllo\n".encode())
    assert e2b_backend.list_dir(handle.external_id, "/workspace/notes.txt") is None
    seen = e2b_backend.exec(handle.external_id, "sha256sum data/blob.bin", timeout=10)
    assert seen.exit_code == 0


def test_missing_paths_are_file_not_found(e2b_backend):
    handle = e2b_backend.create(spec(template="bare"))

    with pytest.raises(FileNotFoundInSandbox):
        e2b_backend.read_file(handle.external_id, "/workspace/nope.txt")
    with pytest.raises(FileNotFoundInSandbox):
        e2b_backend.list_dir(handle.external_id, "/workspace/nope")


def test_it_rejects_paths_that_symlink_outside_the_workspace(e2b_backend, e2b_double):
    handle = e2b_backend.create(spec(template="bare"))
    sid = handle.external_id
    e2b_backend.exec(
        sid,
        "ln -s /home/user/.agent_runtime /workspace/out && ln -s /etc/passwd /workspace/pw "
        "&& mkdir real && echo inside > real/f && ln -s /workspace/real /workspace/in",
        timeout=10,
    )

    for call in (
        lambda: e2b_backend.read_file(sid, "/workspace/out/token"),
        lambda: e2b_backend.read_file(sid, "/workspace/pw"),
        lambda: e2b_backend.list_dir(sid, "/workspace/out"),
        lambda: e2b_backend.write_file(sid, "/workspace/out/planted", b"x"),
    ):
        with pytest.raises(PathOutsideWorkspace):
            call()
    assert not (e2b_double.sandboxes[sid].root / "home/.agent_runtime/planted").exists()
    assert e2b_backend.read_file(sid, "/workspace/in/f") == b"inside\n"


def test_set_timeout_extends_and_then_expires_the_sandbox(e2b_backend, e2b_double):
    handle = e2b_backend.create(spec(template="bare", timeout_seconds=2))
    sid = handle.external_id

    e2b_backend.set_timeout(sid, 60)
    time.sleep(2.2)
    assert e2b_backend.exec(sid, "true", timeout=10).exit_code == 0

    e2b_backend.set_timeout(sid, 1)
    assert wait_until(lambda: sid not in e2b_double.sandboxes, timeout=5)
    with pytest.raises(SandboxGone):
        e2b_backend.exec(sid, "true", timeout=10)
    with pytest.raises(SandboxGone):
        e2b_backend.set_timeout(sid, 60)


def test_a_fresh_backend_reconnects_to_a_running_sandbox(e2b_backend, e2b_double):
    handle = e2b_backend.create(spec(template="bare"))
    e2b_backend.write_file(handle.external_id, "/workspace/kept.txt", b"still here")
    restarted = E2BBackend(
        **e2b_double.backend_options(), template_id="agent-runtime", install_id=E2B_INSTALL_ID
    )

    again = restarted.connect(handle.external_id)

    assert again == handle
    assert restarted.read_file(handle.external_id, "/workspace/kept.txt") == b"still here"


def test_connect_resumes_a_paused_sandbox(e2b_backend, e2b_double):
    handle = e2b_backend.create(spec(template="bare"))
    opts = e2b_double.backend_options()
    Sandbox.pause(handle.external_id, api_key=opts["api_key"], api_url=opts["api_url"])

    e2b_backend.connect(handle.external_id)

    assert e2b_double.sandboxes[handle.external_id].state == "running"
    assert e2b_backend.exec(handle.external_id, "echo up", timeout=10).stdout == "up\n"


def test_a_killed_sandbox_is_gone_and_killing_again_is_fine(e2b_backend, e2b_double):
    handle = e2b_backend.create(spec(template="bare"))

    e2b_backend.kill(handle.external_id)
    e2b_backend.kill(handle.external_id)
    e2b_backend.kill("inever3xisted")

    assert handle.external_id not in e2b_double.sandboxes
    restarted = E2BBackend(
        **e2b_double.backend_options(), template_id="agent-runtime", install_id=E2B_INSTALL_ID
    )
    with pytest.raises(SandboxGone):
        restarted.connect(handle.external_id)
    with pytest.raises(SandboxGone):
        e2b_backend.exec(handle.external_id, "true", timeout=10)


def test_a_sandbox_killed_behind_our_back_is_gone(e2b_backend, e2b_double):
    handle = e2b_backend.create(spec(template="bare"))

    e2b_double.destroy(handle.external_id)

    with pytest.raises(SandboxGone):
        e2b_backend.read_file(handle.external_id, "/workspace/x")


def test_list_returns_only_this_installs_live_sandboxes(e2b_backend, e2b_double):
    other = E2BBackend(
        **e2b_double.backend_options(), template_id="bare", install_id="another-install"
    )
    mine = [spec(template="bare"), spec(template="bare")]
    handles = [e2b_backend.create(s) for s in mine]
    other.create(spec())
    killed = e2b_backend.create(spec(template="bare"))
    e2b_backend.kill(killed.external_id)

    listed = e2b_backend.list()

    assert sorted((i.external_id, i.sandbox_id, i.agent_id) for i in listed) == sorted(
        (h.external_id, s.sandbox_id, s.agent_id) for h, s in zip(handles, mine, strict=True)
    )


def test_an_unknown_template_is_a_clear_error(e2b_backend):
    with pytest.raises(BackendError) as caught:
        e2b_backend.create(spec(template="no-such-template"))

    assert caught.value.message == (
        "E2B template 'no-such-template' was not found. Build it with "
        "`python manage.py build_template` and set E2B_TEMPLATE_ID."
    )


def test_a_rejected_api_key_is_reported_without_leaking_it(e2b_double, caplog):
    options = e2b_double.backend_options() | {"api_key": "e2b_wrong_secret_key"}
    backend = E2BBackend(**options, template_id="bare", install_id=E2B_INSTALL_ID)

    with caplog.at_level(logging.DEBUG), pytest.raises(BackendError) as caught:
        backend.create(spec())

    assert caught.value.message.startswith("E2B rejected the API key")
    assert "e2b_wrong_secret_key" not in caught.value.message
    assert "e2b_wrong_secret_key" not in caplog.text
    assert not e2b_double.sandboxes


def test_a_missing_api_key_says_what_to_set(e2b_double):
    options = e2b_double.backend_options() | {"api_key": ""}
    backend = E2BBackend(**options, template_id="bare", install_id=E2B_INSTALL_ID)

    with pytest.raises(BackendError) as caught:
        backend.create(spec())

    assert caught.value.message.startswith("E2B_API_KEY is not set")


def test_the_double_answers_the_sdk_like_e2b(e2b_backend, e2b_double):
    s = spec(template="bare")
    handle = e2b_backend.create(s)
    opts = {"api_key": e2b_double.api_key, "api_url": e2b_double.api_url}

    info = Sandbox.get_info(handle.external_id, **opts)
    envd_without_token = httpx.get(
        f"{e2b_double.sandbox_url}/files",
        params={"path": "/workspace"},
        headers={"E2b-Sandbox-Id": handle.external_id},
    )

    assert (info.template_id, info.state, info.metadata["sandbox_id"]) == (
        "bare",
        "running",
        s.sandbox_id,
    )
    assert envd_without_token.status_code == 401


def test_exec_output_is_capped(e2b_double):
    backend = E2BBackend(
        **e2b_double.backend_options(),
        template_id="bare",
        install_id=E2B_INSTALL_ID,
        max_output_bytes=1000,
    )
    handle = backend.create(spec())

    result = backend.exec(handle.external_id, "head -c 5000 /dev/zero | tr '\\0' x", timeout=10)

    assert (result.stdout, result.exit_code) == ("x" * 1000, 0)
