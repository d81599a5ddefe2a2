# Vendored from https://github.com/e2b-dev/E2B packages/python-sdk/tests/sync/sandbox_sync/commands/test_sandbox_killed_during_run.py
# at commit b8029973aa7d (python-sdk 2.45.1). Copyright (c) 2025 FOUNDRYLABS, INC.
# MIT License (see LICENSE beside this directory's README). Unchanged below this header.
import pytest

from e2b import Sandbox, TimeoutException


@pytest.mark.skip_debug()
def test_kill_sandbox_while_command_is_running(sandbox: Sandbox):
    cmd = sandbox.commands.run("sleep 60", background=True)

    sandbox.kill()

    with pytest.raises(TimeoutException) as exc_info:
        cmd.wait()

    # The health check confirms the sandbox is gone, so the error states it outright
    assert "sandbox was killed or reached its end of life" in str(exc_info.value)
