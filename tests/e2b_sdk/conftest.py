"""E2B's own sync SDK tests (vendored beside this file, see README.md) against the E2B double.

The fixtures are the ones E2B's `packages/python-sdk/tests/conftest.py` provides (`sandbox`,
`sandbox_factory`, `template`, `sandbox_test_id`, `helpers`, `debug`, `test_api_key` and the
`skip_debug` marker), written again here so they create sandboxes on a double started on
loopback instead of on E2B's cloud: the real SDK finds it through `E2B_API_URL`,
`E2B_SANDBOX_URL`, `E2B_DOMAIN` and `E2B_API_KEY`, exactly as it would a self-hosted E2B.

`CANNOT_PASS_HERE` lists the few tests that cannot pass against a double on this machine, each
with the reason; they are marked xfail(strict=True), so one that starts passing is reported and
must leave the list.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import random
import string

import pytest
from e2b import CommandExitException, CommandHandle, Sandbox

from testsupport.e2b_double import DoubleTemplate, E2BDouble

# E2B's "base" template: Debian with python3, default user `user`, WORKDIR /home/user, and
# an ENV of its own that only the start command sees (e2b-dev/infra#2268).
BASE = DoubleTemplate(env={"E2B_TEMPLATE_ONLY": "1"})

CANNOT_PASS_HERE = {
    # The sandbox user runs `sudo`; the double's processes are unprivileged bubblewrap jails
    # (no setuid inside a user namespace), and E2B's base image is not this host's /usr.
    "sandbox_sync/commands/test_env_vars.py::test_bash_command_scoped_env_vars": "sudo",
    # Written for python-sdk 2.45, which resumed through the v1 connect route it mocks; the
    # pinned 2.63 calls `post_v_2_sandboxes_sandbox_id_connect`, so the mock never applies.
    "sandbox_sync/test_connect.py::test_connect_normalizes_unset_tokens": (
        "mocks a route the pinned SDK no longer calls"
    ),
    # A memory snapshot restores the same kernel (same boot_id); the double's sandboxes share
    # the host kernel, so a cold boot cannot be told apart by boot_id.
    "sandbox_sync/test_create.py::test_auto_pause_filesystem_only_reboots": (
        "boot_id is the host's: a cold boot cannot change it"
    ),
    # Waking a paused sandbox on HTTP needs E2B's edge proxy in front of every port; the
    # double publishes ports on loopback directly, and https:// needs wildcard TLS.
    "sandbox_sync/test_create.py::test_auto_resume_wakes_on_http_request": (
        "needs E2B's public https edge for sandbox ports"
    ),
}


def pytest_configure(config):
    config.addinivalue_line("markers", "skip_debug: skip test if E2B_DEBUG is set.")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """E2B's suite runs under pytest-asyncio's auto mode; one sync test is written as
    `async def` (its body awaits nothing), so run such tests to completion here."""
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        names = inspect.signature(pyfuncitem.obj).parameters
        asyncio.run(pyfuncitem.obj(**{n: pyfuncitem.funcargs[n] for n in names}))
        return True
    return None


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(__file__)
    for item in items:
        key = os.path.relpath(str(item.path), here) + "::" + item.name.split("[")[0]
        reason = CANNOT_PASS_HERE.get(key)
        if reason:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))


@pytest.fixture(scope="session")
def e2b_sdk_double():
    with E2BDouble(templates={"base": BASE}) as double:
        yield double


@pytest.fixture(autouse=True)
def _point_the_sdk_at_the_double(e2b_sdk_double, monkeypatch):
    monkeypatch.delenv("E2B_DEBUG", raising=False)
    monkeypatch.delenv("E2B_ACCESS_TOKEN", raising=False)
    monkeypatch.setenv("E2B_API_KEY", e2b_sdk_double.api_key)
    monkeypatch.setenv("E2B_API_URL", e2b_sdk_double.api_url)
    monkeypatch.setenv("E2B_SANDBOX_URL", e2b_sdk_double.sandbox_url)
    monkeypatch.setenv("E2B_DOMAIN", e2b_sdk_double.domain)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call":
        item._test_failed = rep.failed


@pytest.fixture
def test_api_key() -> str:
    return "e2b_" + "0" * 40


@pytest.fixture
def sandbox_test_id():
    return "test_" + "".join(random.choices(string.ascii_lowercase + string.digits, k=8))


@pytest.fixture
def template():
    return "base"


@pytest.fixture
def sandbox_factory(request, template, sandbox_test_id):
    def factory(*, template_name: str = template, **kwargs):
        metadata = kwargs.setdefault("metadata", dict())
        metadata.setdefault("sandbox_test_id", sandbox_test_id)
        sandbox = Sandbox.create(template_name, **kwargs)
        request.addfinalizer(sandbox.kill)
        return sandbox

    return factory


@pytest.fixture
def sandbox(sandbox_factory):
    return sandbox_factory()


@pytest.fixture
def debug():
    return os.getenv("E2B_DEBUG") is not None


@pytest.fixture(autouse=True)
def skip_by_debug(request, debug):
    if request.node.get_closest_marker("skip_debug") and debug:
        pytest.skip("skipped because E2B_DEBUG is set")


class Helpers:
    @staticmethod
    def check_cmd_exit_error(cmd: CommandHandle):
        try:
            cmd.wait()
        except CommandExitException as e:
            raise AssertionError(f"command failed with exit code {e.exit_code}: {e.stderr}") from e


@pytest.fixture
def helpers():
    return Helpers
