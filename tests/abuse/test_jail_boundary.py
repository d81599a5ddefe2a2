"""The local jail as a boundary, attacked the way a user can: deploy an agent, then run
commands in its sandbox through POST /api/agents/{id}/sandbox/exec (what the agent's own
Bash tool can do too). Each attack here worked against the jail of issue 12:

- the agent's env (PATH, BASH_ENV, LD_PRELOAD) reached host processes running as root;
- the sandbox user was host uid 0: host-wide sysctls writable, setuid-root files plantable;
- no aggregate limits: fork bombs, memory and disk unbounded;
- exec left background processes running;
- kernel interfaces a jail never needs (keyrings) were open.
"""

from __future__ import annotations

import glob
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from sandboxes.backends import _build
from sandboxes.models import Sandbox
from sandboxes.tests.conftest import create_agent
from sandboxes.tests.flow import deploy_ready, wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which("bwrap"), reason="needs bubblewrap"),
]

CANARY = "canary-value-7f3e1a"
FAKE_TOOL = (
    '#!/bin/sh\nid -u >> "$(dirname $0)/../ran-as-$(basename $0)"\n'
    'exec /usr/bin/$(basename $0) "$@"\n'
)


@pytest.fixture
def jail(settings, live_studio):
    """The local backend with small limits, so that hitting them is quick and harmless."""
    settings.SANDBOX_BACKEND = "local"
    settings.SANDBOX_PIDS_MAX = 64
    settings.SANDBOX_MEMORY_MB = 256
    settings.SANDBOX_DISK_MB = 64
    _build.cache_clear()
    yield
    _build.cache_clear()


@pytest.fixture
def roomy_jail(settings, live_studio):
    """The local backend with its default limits."""
    settings.SANDBOX_BACKEND = "local"
    _build.cache_clear()
    yield
    _build.cache_clear()


def _sh(api, agent_id, command: str, **extra) -> dict:
    res = api.post(
        f"/api/agents/{agent_id}/sandbox/exec", {"command": command, **extra}, format="json"
    )
    assert res.status_code == 200, res.content
    return res.json()


def _deploy(api, **fields) -> tuple[str, Sandbox]:
    agent_id = create_agent(api, **fields)
    deploy_ready(api, agent_id)
    return agent_id, Sandbox.objects.get(agent_id=agent_id)


def _host_files(sandbox: Sandbox, name: str) -> list[str]:
    from django.conf import settings

    root = Path(settings.SANDBOX_DATA_DIR) / "sandboxes" / sandbox.external_id
    return glob.glob(f"{root}/**/workspace/{name}", recursive=True)


def _host_workspaces(sandbox: Sandbox) -> list[str]:
    from django.conf import settings

    root = Path(settings.SANDBOX_DATA_DIR) / "sandboxes" / sandbox.external_id
    return glob.glob(f"{root}/**/workspace", recursive=True)


def _uids_of_processes_with(text: str) -> list[tuple[int, int]]:
    """(pid, real uid) of every live process whose environment contains `text`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        if text.encode() in environ:
            uid = int(next(ln for ln in status.splitlines() if ln.startswith("Uid:")).split()[1])
            found.append((int(entry), uid))
    return found


def _pids_of(cmdline: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            if Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").strip() == (
                cmdline.encode()
            ):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if stat[stat.rindex(")") + 2] != "Z":
                    found.append(int(entry))
        except (OSError, ValueError):
            continue
    return found


def test_it_keeps_the_agents_env_out_of_host_processes(jail, api):
    # Agent A plants fake host tools in its workspace; agent B names them in its env. The
    # attacker is assumed to know A's host path (the old jail showed it as pid 1's argv).
    agent_a, sandbox_a = _deploy(api)
    [host_ws] = _host_workspaces(sandbox_a)
    setup = "mkdir -p bin && for t in bwrap prlimit setpriv unshare sh mount env; do " + (
        f"printf '%s' '{FAKE_TOOL}' > bin/$t; chmod +x bin/$t; done; "
    )
    setup += f"echo 'id -u >> {host_ws}/ran-as-bashenv' > bashenv.sh"
    assert _sh(api, agent_a, setup)["exit_code"] == 0
    agent_b, _ = _deploy(
        api,
        env={
            "PATH": f"{host_ws}/bin:/usr/bin:/bin",
            "BASH_ENV": f"{host_ws}/bashenv.sh",
            "LD_PRELOAD": f"{host_ws}/nothing.so",
            "CANARY": CANARY,
        },
    )
    # Every exec starts host processes; a long one lets us look at them while they run.
    runner = threading.Thread(target=_sh, args=(api, agent_b, "sleep 3; true"))
    runner.start()
    time.sleep(1.5)
    holders = _uids_of_processes_with(CANARY)
    runner.join()
    # The variables reached B's jail (the user asked for them there) ...
    assert _sh(api, agent_b, "echo $CANARY")["stdout"].strip() == CANARY
    # ... but no host process running as root ever had them, and no fake tool ran as root.
    assert holders, "the jail's own processes carry the agent's env"
    assert [pid for pid, uid in holders if uid == 0] == []
    ran = {Path(p).name: Path(p).read_text().split() for p in glob.glob(f"{host_ws}/ran-as-*")}
    assert {name: uids for name, uids in ran.items() if "0" in uids} == {}


def test_the_sandbox_user_is_not_host_root(jail, api):
    agent_id, sandbox = _deploy(api)
    # A host-wide sysctl, written back with its own value (harmless if the write works).
    result = _sh(
        api,
        agent_id,
        "v=$(cat /proc/sys/kernel/printk_ratelimit); "
        "echo $v > /proc/sys/kernel/printk_ratelimit && echo WROTE; "
        "echo h > /proc/sysrq-trigger 2>/dev/null && echo SYSRQ; "
        "cp /bin/sh ./suid-sh && chmod u+s ./suid-sh && stat -c %a ./suid-sh; "
        "./suid-sh -p -c 'id -u'",
    )
    assert "WROTE" not in result["stdout"]
    assert "SYSRQ" not in result["stdout"]
    assert result["stdout"].split()[-2:] == ["4755", "1000"]  # made, but it elevates nothing
    [planted] = _host_files(sandbox, "suid-sh")
    assert os.stat(planted).st_uid not in (0, os.getuid())  # the sandbox's own host uid


def test_a_fork_bomb_stops_at_the_sandboxs_process_limit(jail, api):
    agent_id, _ = _deploy(api)
    bomb = (
        "import os, time\n"
        "n = 0\n"
        "for _ in range(400):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError:\n"
        "        break\n"
        "    if pid == 0:\n"
        "        time.sleep(60); os._exit(0)\n"
        "    n += 1\n"
        "print(n)\n"
    )
    result = _sh(api, agent_id, f"python3 -c '{bomb}'", timeout=30000)
    assert int(result["stdout"].split()[0]) < 64
    assert "process limit" in result["stderr"]
    assert _sh(api, agent_id, "echo still-fine")["stdout"] == "still-fine\n"


def test_memory_is_bounded_per_sandbox(jail, api):
    agent_id, _ = _deploy(api)
    result = _sh(api, agent_id, "python3 -c 'b = bytearray(600 << 20); print(len(b))'")
    assert result["exit_code"] != 0
    assert "memory limit" in result["stderr"]


def test_the_workspace_has_a_disk_quota(jail, api):
    agent_id, _ = _deploy(api)
    result = _sh(api, agent_id, "head -c 100M /dev/zero > big; echo rc=$?; rm -f big")
    assert "No space left on device" in result["stderr"]
    assert "rc=1" in result["stdout"]
    assert _sh(api, agent_id, "echo small > f && cat f")["stdout"] == "small\n"


def test_exec_leaves_no_background_process(jail, api):
    agent_id, _ = _deploy(api)
    tag = str(5000 + int(time.time()) % 1000)
    result = _sh(
        api,
        agent_id,
        f"nohup sleep {tag}1 >/dev/null 2>&1 & setsid sleep {tag}2 >/dev/null 2>&1 & "
        f"(sleep {tag}3 >/dev/null 2>&1 &) ; echo started",
    )
    assert result["stdout"] == "started\n"
    time.sleep(0.3)
    assert [p for n in (1, 2, 3) for p in _pids_of(f"sleep {tag}{n}")] == []


def test_nothing_of_a_sandbox_outlives_stop(jail, api):
    agent_id, sandbox = _deploy(api)
    from django.conf import settings

    state = Path(settings.SANDBOX_DATA_DIR) / "sandboxes" / sandbox.external_id / "state.json"
    uid = __import__("json").loads(state.read_text()).get("uid")
    tag = str(6000 + int(time.time()) % 1000)
    runner = threading.Thread(
        target=lambda: api.post(
            f"/api/agents/{agent_id}/sandbox/exec",
            {"command": f"env -i setsid sleep {tag}1 & sleep {tag}2", "timeout": 60000},
            format="json",
        )
    )
    runner.start()
    wait_for(lambda: _pids_of(f"sleep {tag}2"), timeout=10, what="the exec to run")
    assert api.post(f"/api/agents/{agent_id}/stop", {}, format="json").status_code == 202
    runner.join(30)
    wait_for(lambda: not _pids_of(f"sleep {tag}1") and not _pids_of(f"sleep {tag}2"), timeout=10)
    if uid is not None:
        leftover = [p for p, u in _uids_of_processes_with("") if u == uid]
        assert leftover == []


def test_kernel_interfaces_a_jail_never_needs_are_refused(jail, api):
    agent_id, _ = _deploy(api)
    probe = (
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "r = libc.syscall(250, 0, -3, 1)\n"  # keyctl(GET_KEYRING_ID, session, create)
        "print(r, ctypes.get_errno())\n"
    )
    result = _sh(api, agent_id, f"python3 -c '{probe}'")
    assert result["stdout"].split() == ["-1", "1"]  # EPERM from the seccomp filter


def test_the_tools_agents_use_still_work_in_the_jail(roomy_jail, api):
    agent_id, _ = _deploy(api)
    checks = (
        "python3 -m pip --version >/dev/null && echo pip-ok; node -e 'console.log(\"node-ok\")'"
    )
    if os.path.exists("/usr/bin/chromium"):
        checks += (
            "; chromium --headless --no-sandbox --disable-gpu --disable-background-networking "
            "--dump-dom 'data:text/html,<p>chromium-ok</p>' 2>/dev/null"
        )
    result = _sh(api, agent_id, checks, timeout=60000)
    assert "pip-ok" in result["stdout"], result
    if shutil.which("node"):
        assert "node-ok" in result["stdout"], result
    if os.path.exists("/usr/bin/chromium"):
        assert "chromium-ok" in result["stdout"], result
