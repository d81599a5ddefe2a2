# Vendored from https://github.com/e2b-dev/E2B packages/python-sdk/tests/sync/sandbox_sync/commands/test_cmd_kill.py
# at commit b8029973aa7d (python-sdk 2.45.1). Copyright (c) 2025 FOUNDRYLABS, INC.
# MIT License (see LICENSE beside this directory's README). Unchanged below this header.
import pytest

from e2b import Sandbox, CommandExitException


def test_kill_process(sandbox: Sandbox):
    cmd = sandbox.commands.run("sleep 10", background=True)
    pid = cmd.pid

    sandbox.commands.kill(pid)

    with pytest.raises(CommandExitException):
        sandbox.commands.run(f"kill -0 {pid}")


def test_kill_non_existing_process(sandbox):
    non_existing_pid = 999999

    assert not sandbox.commands.kill(non_existing_pid)
