"""A sandbox that swaps a directory for a symlink while the studio reads through it.

The walk in local_files.py looks at each component (lstat) and then acts on it (readlink,
open): a swap in between must end in a clear error, never an OSError (a 500 with a
traceback). The swapper is a real concurrent loop, bounded in time: a process on the host
for the Workspace tests, a process inside a real bubblewrap jail for the API test.
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
import threading
import time

import pytest

from sandboxes.backends.base import BackendError
from sandboxes.backends.local_files import Workspace

SWAPPER = r"""
import os, sys, time
os.chdir(sys.argv[1]); target = sys.argv[2]; end = time.monotonic() + float(sys.argv[3])
print("swapping", flush=True)
while time.monotonic() < end:
    try:
        os.rename("d", "d.real"); os.symlink(target, "d")
        os.unlink("d"); os.rename("d.real", "d")
    except OSError:
        pass
"""
# What a read may answer while the path changes under it: the path is there, or gone at that
# instant, or kept changing; each a clear error the API maps to a 4xx.
CLEAR = {"FileNotFound", "PathChanged"}


def _race(workspace: Workspace, seconds: float) -> collections.Counter:
    outcomes = collections.Counter()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for op in (
            lambda: workspace.read("/workspace/d/f.txt", max_bytes=100),
            lambda: workspace.list("/workspace/d"),
            lambda: workspace.check_dir("/workspace/d"),
        ):
            try:
                op()
                outcomes["ok"] += 1
            except BackendError as exc:  # anything else fails the test with its traceback
                outcomes[exc.code] += 1
    return outcomes


@pytest.mark.parametrize("target", ["d.real", "/workspace/d.real"])
def test_a_directory_swapped_for_a_symlink_mid_read_is_a_clear_error(tmp_path, target):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.txt").write_text("inside")
    swapper = subprocess.Popen(
        [sys.executable, "-c", SWAPPER, str(tmp_path), target, "3"], stdout=subprocess.PIPE
    )
    try:
        assert swapper.stdout.readline() == b"swapping\n"
        outcomes = _race(Workspace(str(tmp_path)), 2.5)
    finally:
        swapper.wait(timeout=10)
    assert set(outcomes) - {"ok"} <= CLEAR, outcomes
    assert outcomes["ok"] and outcomes["FileNotFound"], outcomes  # the race was on


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not shutil.which("bwrap"), reason="needs bubblewrap")
def test_the_files_api_answers_4xx_while_the_sandbox_swaps_a_directory(live_studio, api, settings):
    from sandboxes.backends import get_backend
    from sandboxes.models import Sandbox
    from sandboxes.tests.conftest import create_agent
    from sandboxes.tests.flow import deploy_ready

    settings.SANDBOX_BACKEND = "local"
    agent_id = create_agent(api, skills=[])
    deployment = deploy_ready(api, agent_id, timeout=90)  # a shared machine may be slow
    files = f"/api/agents/{agent_id}/sandbox/files"
    setup = api.post(f"/api/agents/{agent_id}/sandbox/exec", {"command": "mkdir d"}).json()
    assert setup["exit_code"] == 0, setup
    assert api.post(files, {"files": [{"path": "d/f.txt", "content": "inside"}]}).status_code == 200

    external_id = Sandbox.objects.get(pk=deployment["id"]).external_id
    swap = f"python3 -c '{SWAPPER}' /workspace d.real 4"
    result = {}
    thread = threading.Thread(
        target=lambda: result.update(run=get_backend("local").exec(external_id, swap, timeout=20))
    )
    thread.start()
    statuses, codes = collections.Counter(), collections.Counter()
    try:
        while thread.is_alive():
            for path in ("/workspace/d/f.txt", "/workspace/d"):
                answer = api.get(files, {"path": path})
                statuses[answer.status_code] += 1
                if answer.status_code >= 400:
                    codes[answer.json()["error"]] += 1
    finally:
        thread.join(timeout=30)
    assert result["run"].exit_code == 0, result["run"]
    assert set(statuses) <= {200, 400, 404}, (statuses, codes)
    assert set(codes) <= {"NotFound", "PathChanged"}, (statuses, codes)
    assert statuses[200] and statuses[404], statuses  # the race was on
