"""The bubblewrap command line and the host-process plumbing of the local backend.

Why the jail looks the way it does (measured on the studio's machines, bubblewrap 0.8):

- Each sandbox has its own unprivileged host uid (and gid of the same number) from
  SANDBOX_UID_RANGE: bubblewrap is started as that uid (setpriv, see local_launch.py), so
  uid 1000 inside *is* that host uid and nothing of root's. Started as root, bubblewrap
  would map the sandbox user to host uid 0: /proc/sys writable (sysctl checks the uid, not
  capabilities), setuid-root files plantable in the workspace, RLIMIT_NPROC ignored (the
  kernel exempts global root from it). Each of those was measured, and each is now refused.
- /proc/sys and /proc/sysrq-trigger are bound read-only over the jail's own /proc anyway.
- Everything the sandbox sees of the host is bound read-only, and the root-only files in
  /etc (/etc/shadow, /etc/ssl/private, ...) are masked: files by an unreadable /dev/null
  bind, directories by an empty one. /etc/passwd and /etc/group are replaced by a small pair
  that names uid 1000 `agent`.
- A seccomp filter (local_seccomp.py) refuses the system calls container runtimes refuse.
- bubblewrap runs with --clearenv; only studio constants are set with --setenv (argv is
  readable by every host user and by the sandbox itself: `ps` inside shows bwrap's argv as
  pid 1). The user's variables arrive through the launcher's fd (local_launch.py).
"""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import signal
import stat
import time
from dataclasses import dataclass

from sandboxes.backends.base import WORKSPACE
from sandboxes.backends.local_launch import host_binary

HOME = "/home/agent"
RUNTIME_MOUNT = "/opt/agent_studio"
SANDBOX_UID = 1000
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"

# name -> (prlimit flag, resource constant, default). Address space is per process and only
# a fallback for hosts without a memory cgroup (the backend lifts it where the cgroup bounds
# the sandbox's memory as a whole): Chromium and V8 reserve far more address space than they
# use and crash under 4 GiB (measured: SIGTRAP at 4 and 16 GiB, fine unlimited).
RLIMITS = {
    "as": ("--as", resource.RLIMIT_AS, 4 << 30),
    "nofile": ("--nofile", resource.RLIMIT_NOFILE, 4096),
    "nproc": ("--nproc", resource.RLIMIT_NPROC, 512),
    "fsize": ("--fsize", resource.RLIMIT_FSIZE, 1 << 30),
    "cpu": ("--cpu", resource.RLIMIT_CPU, 3600),
}
DEFAULT_RLIMITS = {name: spec[2] for name, spec in RLIMITS.items()}


def check_rlimits(rlimits: dict[str, int | None]) -> None:
    unknown = set(rlimits) - set(RLIMITS)
    if unknown:
        raise ValueError(f"Unknown rlimits: {sorted(unknown)}; known: {sorted(RLIMITS)}")


def rlimit_prefix(rlimits: dict[str, int | None]) -> list[str]:
    """`prlimit --as=N ... --` for the limits that are set (an empty list if none)."""
    check_rlimits(rlimits)
    flags = [f"{RLIMITS[n][0]}={v}" for n, v in rlimits.items() if v is not None]
    if not flags:
        return []
    return [host_binary("prlimit"), *flags, "--"]


@functools.cache
def unreadable_etc_entries() -> tuple[list[str], list[str]]:
    """(files, dirs) under /etc that are not world-readable: the jail must not show them."""
    files, dirs = [], []
    for root, subdirs, names in os.walk("/etc"):
        for name in list(subdirs):
            path = os.path.join(root, name)
            st = os.lstat(path)
            if not stat.S_ISLNK(st.st_mode) and not st.st_mode & stat.S_IROTH:
                dirs.append(path)
                subdirs.remove(name)
        for name in names:
            path = os.path.join(root, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode) and not st.st_mode & stat.S_IROTH:
                files.append(path)
    return files, dirs


def write_identity_files(jail_dir: str) -> None:
    """The passwd/group pair and the empty directory every jail binds."""
    os.makedirs(os.path.join(jail_dir, "empty"), exist_ok=True)
    os.chmod(os.path.join(jail_dir, "empty"), 0o555)  # noqa: S103 - bound over dirs in /etc
    for name, text in {
        "passwd": (
            "root:x:0:0:root:/root:/usr/sbin/nologin\n"
            f"agent:x:{SANDBOX_UID}:{SANDBOX_UID}:agent:{HOME}:/bin/bash\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        ),
        "group": f"root:x:0:\nagent:x:{SANDBOX_UID}:\nnogroup:x:65534:\n",
    }.items():
        path = os.path.join(jail_dir, name)
        with contextlib.suppress(OSError), open(path) as f:
            if f.read() == text:
                continue  # replacing it would pull it from under a jail being set up
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)


@dataclass(frozen=True)
class JailLayout:
    """Everything that is the same for every bwrap of one sandbox."""

    workspace: str  # host dirs
    home: str
    jail_dir: str  # shared passwd/group/empty
    runtime_dir: str  # the agent_runtime package, bound at /opt/agent_studio/agent_runtime
    python_dirs: tuple[str, ...]  # bound read-only at the same path
    tmpfs_bytes: int
    # Bind sources a sandbox uid cannot reach on the host (e.g. a Python under /root),
    # mounted by root onto these reachable points in a private mount namespace first.
    remapped: tuple[tuple[str, str], ...] = ()

    def source(self, path: str) -> str:
        return dict(self.remapped).get(path, path)

    def argv(
        self,
        *,
        chdir: str,
        info_fd: int,
        setenv: dict[str, str],
        seccomp_fd: int | None = None,
    ) -> list[str]:
        """`bwrap ... --` for this sandbox. `setenv` must hold studio constants only."""
        args = [
            host_binary("bwrap"),
            "--unshare-all",
            "--unshare-user",  # explicit, so that --disable-userns is accepted
            "--share-net",  # the sandbox's own namespace, entered by the chain (local_net.py)
            "--disable-userns",
            "--new-session",
            "--hostname",
            "sandbox",
            "--ro-bind",
            "/usr",
            "/usr",
            "--symlink",
            "usr/bin",
            "/bin",
            "--symlink",
            "usr/sbin",
            "/sbin",
            "--symlink",
            "usr/lib",
            "/lib",
            "--symlink",
            "usr/lib64",
            "/lib64",
            "--ro-bind",
            "/etc",
            "/etc",
        ]
        files, dirs = unreadable_etc_entries()
        for path in files:
            args += ["--ro-bind", "/dev/null", path]
        for path in dirs:
            args += ["--ro-bind", self.source(os.path.join(self.jail_dir, "empty")), path]
        args += [
            "--ro-bind",
            self.source(os.path.join(self.jail_dir, "passwd")),
            "/etc/passwd",
            "--ro-bind",
            self.source(os.path.join(self.jail_dir, "group")),
            "/etc/group",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--ro-bind",
            "/proc/sys",
            "/proc/sys",
            "--ro-bind-try",
            "/proc/sysrq-trigger",
            "/proc/sysrq-trigger",
            "--perms",
            "1777",
            "--size",
            str(self.tmpfs_bytes),
            "--tmpfs",
            "/tmp",  # noqa: S108 - the jail's own tmpfs
        ]
        for path in self.python_dirs:
            args += ["--ro-bind", self.source(path), path]
        args += [
            "--ro-bind",
            self.source(self.runtime_dir),
            f"{RUNTIME_MOUNT}/agent_runtime",
            "--bind",
            self.source(self.workspace),
            WORKSPACE,
            "--bind",
            self.source(self.home),
            HOME,
            "--chdir",
            chdir,
            "--uid",
            str(SANDBOX_UID),
            "--gid",
            str(SANDBOX_UID),
            "--clearenv",
        ]
        for name, value in setenv.items():
            args += ["--setenv", name, value]
        if seccomp_fd is not None:
            args += ["--seccomp", str(seccomp_fd)]
        args += ["--info-fd", str(info_fd), "--"]
        return args


# --- host processes -------------------------------------------------------------------


def proc_start_time(pid: int) -> int | None:
    """Start time (clock ticks since boot) of a live, non-zombie process; None otherwise."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def proc_cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []


def proc_environ(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return {}
    env = {}
    for item in data.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    return env


def _uids(pid: int) -> tuple[int, ...]:
    """Real, effective, saved and file-system uid of a process (empty if it is gone)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Uid:"):
                    return tuple(int(x) for x in line.split()[1:])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return ()


def _pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit() and int(e) != os.getpid()]


def processes_of_uid(uid: int) -> list[int]:
    """Live processes with `uid` as any of their uids: every process of one sandbox,
    whatever it forked, renamed or daemonized (nothing else runs as that uid)."""
    return [p for p in _pids() if uid in _uids(p) and proc_start_time(p) is not None]


def uids_in_use(first: int, last: int) -> set[int]:
    """The uids in first..last that some process runs as."""
    used = set()
    for pid in _pids():
        used |= {u for u in _uids(pid) if first <= u <= last}
    return used


def find_processes(*, arg: str, env_marker: str) -> list[int]:
    """Live processes with `arg` as one of their arguments or `env_marker` (KEY=VALUE) in
    their initial environment. The first catches every bwrap of a sandbox (their argv
    binds its workspace), the second every process started in it (they inherit it)."""
    marker = env_marker.encode() + b"\0"
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        pid = int(entry)
        if arg in proc_cmdline(pid):
            found.append(pid)
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if marker in b"\0" + f.read() + b"\0" and proc_start_time(pid) is not None:
                    found.append(pid)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return [pid for pid in found if proc_start_time(pid) is not None]


def kill_until_gone(find, *, timeout: float = 5.0) -> list[int]:
    """SIGKILL whatever `find()` returns until it returns nothing; the survivors, if any.

    SIGKILL on a pid namespace's init (bwrap's inner process) takes the whole namespace
    down with it, so a jail cannot outlive this however it forked.
    """
    deadline = time.monotonic() + timeout
    while True:
        pids = find()
        if not pids:
            return []
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        reap_children(pids)
        if time.monotonic() > deadline:
            return pids
        time.sleep(0.02)


def reap_children(pids) -> None:
    """Collect the exit status of any of `pids` that is our own dead child."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
