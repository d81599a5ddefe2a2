"""What production on E2B needs from the backend, proved against the double through the real
SDK: plan caps, paging, environment parity, pause, the callback URL, the sandbox's size."""

from __future__ import annotations

import time
import uuid

import pytest
from e2b import Sandbox

from sandboxes.backends.base import CreateSpec, PlanLimitExceeded
from sandboxes.backends.e2b import E2BBackend
from sandboxes.tests.conftest import E2B_INSTALL_ID
from testsupport.e2b_double import DoubleTemplate, E2BDouble, standin_template


def spec(**overrides) -> CreateSpec:
    fields = {
        "sandbox_id": str(uuid.uuid4()),
        "agent_id": str(uuid.uuid4()),
        "runtime_token": "runtime-token-for-tests",
        "timeout_seconds": 120,
    }
    return CreateSpec(**(fields | overrides))


def backend_for(double: E2BDouble, **options) -> E2BBackend:
    return E2BBackend(
        **(double.backend_options() | options), template_id="bare", install_id=E2B_INSTALL_ID
    )


def test_it_never_asks_e2b_for_more_than_the_plan_maximum(e2b_double):
    backend = backend_for(e2b_double)

    handle = backend.create(spec(timeout_seconds=7200))
    backend.set_timeout(handle.external_id, 86400)

    sandbox = e2b_double.sandboxes[handle.external_id]
    assert sandbox.end_at - time.time() == pytest.approx(3600, abs=5)


def test_a_timeout_over_the_plan_says_so_in_e2bs_words(e2b_double):
    backend = backend_for(e2b_double, max_timeout_seconds=7200)  # more than the plan allows

    with pytest.raises(PlanLimitExceeded) as caught:
        backend.create(spec(timeout_seconds=7200))

    assert "Timeout cannot be greater than 1 hours" in caught.value.message
    assert "E2B_MAX_TIMEOUT_SECONDS" in caught.value.message
    assert not e2b_double.sandboxes


def test_too_many_sandboxes_says_so_in_e2bs_words():
    with E2BDouble(templates={"bare": DoubleTemplate()}, max_sandboxes=1) as double:
        backend = backend_for(double)
        backend.create(spec())

        with pytest.raises(PlanLimitExceeded) as caught:
            backend.create(spec())

    assert "maximum number of concurrent E2B sandboxes (1)" in caught.value.message
    assert "Rate limit exceeded" not in caught.value.message


def test_list_reads_every_page(e2b_double):
    backend = backend_for(e2b_double, list_page_size=2)
    made = {backend.create(spec()).external_id for _ in range(5)}
    paused = backend.create(spec()).external_id
    backend.pause(paused)

    listed = {info.external_id for info in backend.list()}

    assert listed == made | {paused}


def test_the_sandbox_reports_the_size_it_is_billed_at():
    template = DoubleTemplate(cpu_count=4, memory_mb=4096)
    with E2BDouble(templates={"bare": template}) as double:
        handle = backend_for(double).create(spec())

    assert (handle.vcpus, handle.memory_mb) == (4, 4096)


def test_exec_sees_the_environment_of_the_template_start_command():
    # E2B gives the template's ENV to the start command only; the runtime (the agent) sees
    # it, so exec and packages must too. This template's ENV differs from the host's.
    template = DoubleTemplate(
        start_cmd=standin_template().start_cmd,
        env={
            **standin_template().env,
            "PATH": "/opt/venv/bin:/usr/local/bin:/usr/bin:/bin",
            "PLAYWRIGHT_BROWSERS_PATH": "/opt/ms-playwright",
        },
    )
    with E2BDouble(templates={"bare": template}) as double:
        backend = backend_for(double)
        handle = backend.create(spec(env={"AGENT_VAR": "from-agent"}))

        result = backend.exec(
            handle.external_id,
            'echo "$PATH|$PLAYWRIGHT_BROWSERS_PATH|$AGENT_VAR|$CALL_VAR"',
            timeout=10,
            env={"CALL_VAR": "from-call"},
        )

    assert result.stdout.strip() == (
        "/opt/venv/bin:/usr/local/bin:/usr/bin:/bin|/opt/ms-playwright|from-agent|from-call"
    )


def test_a_paused_sandbox_is_frozen_and_its_clock_stops_until_connect(e2b_double):
    backend = backend_for(e2b_double)
    sid = backend.create(spec(timeout_seconds=2)).external_id
    sdk = Sandbox.connect(sid, **_sdk_options(e2b_double))
    sdk.commands.run(
        "while :; do date +%s%N >> /workspace/ticks; sleep 0.05; done", background=True
    )
    ticks = e2b_double.sandboxes[sid].root / "workspace" / "ticks"
    wait_until(lambda: ticks.exists() and ticks.read_text().count("\n") > 2)

    assert backend.pause(sid) is True
    frozen = ticks.read_text().count("\n")
    time.sleep(3)  # past the create-time timeout of 2 s: a paused sandbox does not expire

    assert ticks.read_text().count("\n") == frozen
    assert e2b_double.sandboxes[sid].state == "paused"
    backend.connect(sid)
    assert wait_until(lambda: ticks.read_text().count("\n") > frozen)


def _sdk_options(double) -> dict:
    return {
        "api_key": double.api_key,
        "api_url": double.api_url,
        "sandbox_url": double.sandbox_url,
        "domain": double.domain,
    }


def wait_until(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return result


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000",
        "http://localhost:8000",
        "http://10.1.2.3",
        "http://192.168.1.20:8000",
        "http://[::1]:8000",
        "http://studio:8000",
        "http://169.254.169.254",
    ],
)
def test_it_knows_an_e2b_sandbox_cannot_reach_a_local_studio(url):
    backend = E2BBackend(api_key="e2b_x", template_id="t", install_id="i")

    problem = backend.callback_url_problem(url)

    assert problem and "BACKEND_API_URL" in problem and url in problem


def test_a_public_studio_url_is_reachable():
    backend = E2BBackend(api_key="e2b_x", template_id="t", install_id="i")

    assert backend.callback_url_problem("https://studio.example.com") is None
    assert backend.callback_url_problem("http://8.8.8.8:8000") is None
