# Vendored from https://github.com/e2b-dev/E2B packages/python-sdk/tests/sync/sandbox_sync/commands/test_cmd_list.py
# at commit b8029973aa7d (python-sdk 2.45.1). Copyright (c) 2025 FOUNDRYLABS, INC.
# MIT License (see LICENSE beside this directory's README). Unchanged below this header.
from e2b import Sandbox


def test_kill_process(sandbox: Sandbox):
    c1 = sandbox.commands.run("sleep 10", background=True)
    c2 = sandbox.commands.run("sleep 10", background=True)

    processes = sandbox.commands.list()

    assert len(processes) >= 2
    pids = [p.pid for p in processes]
    assert c1.pid in pids
    assert c2.pid in pids
