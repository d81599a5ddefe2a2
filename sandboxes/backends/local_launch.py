"""How the local backend starts a process in a sandbox: the host-side chain of commands.

The studio runs as root, so every host process it starts is root until the chain drops
privileges. The rule: nothing a user chose reaches a root process, neither its environment
nor its argv.

- Every host command is an absolute path found once in the fixed system directories
  (HOST_PATH), never through the studio's or a user's PATH.
- Every host command gets HOST_ENV (PATH and LANG) and nothing else.
- bubblewrap runs with --clearenv; only studio constants are given with --setenv (argv is
  readable by every host user and, inside the jail, as pid 1's cmdline). The user's
  variables (agent env, request env, RUNTIME_TOKEN) travel in a memfd that the launcher
  inside the jail (`agent_runtime.launch`) reads, closes and then execve's the command
  with: they only ever exist inside the jail.

The chain, in order (each execs the next, so one pid carries it to bubblewrap):

    prlimit --as=... --                      rlimits (RLIMIT_NPROC counts the sandbox's uid)
    unshare --mount --propagation slave --    a mount namespace of its own for the binds below
    sh -c SETUP sh CGROUP_PROCS... -- SRC MNT... --
                                             joins the sandbox's cgroups, then bind-mounts
                                             sources a sandbox uid could not reach (an
                                             interpreter under /root) onto reachable points
    NETWORK PREFIX (optional)                e.g. `pasta ... --` or `nsenter --net=... --`,
                                             still root: see `Chain.network`
    setpriv --reuid U --regid U --clear-groups --inh-caps=-all --bounding-set=-all --
                                             the sandbox's own host uid from here on
    bwrap ... --                             the jail (unprivileged, in a user namespace)
    python -m agent_runtime.launch --env-fd N --   inside: reads the user's variables
    COMMAND
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
from dataclasses import dataclass, field

from sandboxes.backends.base import BackendError

HOST_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
HOST_ENV = {"PATH": HOST_PATH, "LANG": "C.UTF-8"}
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_ENV_BYTES = 8 << 20

MNT_ROOT = "/mnt"  # in the chain's own mount namespace only: a tmpfs of bind points
# Joins the cgroups given before the first "--" (writing 0 to cgroup.procs moves the
# writer); mounts a tmpfs on MNT_ROOT and bind-mounts each SRC MNT pair given before the
# second onto it (a directory or a file, as SRC is); then execs the rest. A studio
# constant: its arguments are paths the backend made, never user input.
SETUP_SCRIPT = (
    'while [ "$1" != -- ]; do echo 0 > "$1" || exit 125; shift; done; shift; '
    'if [ "$1" != -- ]; then {mount} -t tmpfs -o mode=0755,size=64k,nosuid,nodev '
    "agent-studio {mnt} || exit 125; fi; "
    'while [ "$1" != -- ]; do '
    'if [ -d "$1" ]; then {mkdir} "$2"; else : > "$2"; fi && {mount} --bind "$1" "$2" '
    "|| exit 125; shift 2; done; "
    'shift; exec "$@"'
)


@functools.cache
def host_binary(name: str) -> str:
    """The absolute path of a system command, looked up only in HOST_PATH."""
    found = shutil.which(name, path=HOST_PATH)
    if not found:
        raise BackendError(
            f"Local sandboxes need {name!r} in {HOST_PATH} (Debian: bubblewrap, util-linux).",
            code="SandboxToolMissing",
        )
    return os.path.realpath(found) if name == "sh" else found


def check_env(env: dict[str, str]) -> None:
    """Refuse variable names a shell could not export, and NUL bytes in values. The API
    validates the same names first (agents.serializers.validate_env_names); this is the
    backend's own guard, since its env file format is NAME=value separated by NULs."""
    for name, value in env.items():
        if not isinstance(name, str) or not ENV_NAME_RE.match(name):
            raise BackendError(f"Invalid environment variable name {name!r}.", code="InvalidEnv")
        if not isinstance(value, str) or "\0" in value:
            raise BackendError(f"Invalid value for environment variable {name}.", code="InvalidEnv")


def env_memfd(env: dict[str, str]) -> int:
    """A sealed-size memfd holding `env` as NAME=value entries separated by NULs, at offset
    0 and inheritable: the launcher inside the jail reads it. The caller closes it."""
    check_env(env)
    data = b"".join(f"{k}={v}".encode() + b"\0" for k, v in env.items())
    if len(data) > MAX_ENV_BYTES:
        raise BackendError("The sandbox environment is too large.", code="InvalidEnv")
    fd = os.memfd_create("agent-studio-env", 0)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def bpf_memfd(program: bytes) -> int:
    """A memfd holding a seccomp BPF program for `bwrap --seccomp FD`."""
    fd = os.memfd_create("agent-studio-seccomp", 0)
    os.write(fd, program)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


@dataclass
class Chain:
    """The host commands in front of the jail, as separate parts so that each can be
    reasoned about (and one inserted) on its own. `argv()` joins them."""

    rlimits: list[str] = field(default_factory=list)  # prlimit ... -- (or empty)
    cgroup_procs: list[str] = field(default_factory=list)  # cgroup.procs files to join
    binds: list[tuple[str, str]] = field(default_factory=list)  # (source, mount point)
    # Network setup that must run as root, before privileges drop (e.g. `pasta ... --`).
    network: list[str] = field(default_factory=list)
    uid: int | None = None  # None: stay the studio's uid (isolation "none")
    jail: list[str] = field(default_factory=list)  # bwrap ... -- (or empty)
    command: list[str] = field(default_factory=list)  # launcher + the user's command

    def argv(self) -> list[str]:
        args = list(self.rlimits)
        if self.binds:
            args += [host_binary("unshare"), "--mount", "--propagation", "slave", "--"]
        if self.cgroup_procs or self.binds:
            pairs = [path for pair in self.binds for path in pair]
            script = SETUP_SCRIPT.format(
                mount=shlex.quote(host_binary("mount")),
                mkdir=shlex.quote(host_binary("mkdir")),
                mnt=MNT_ROOT,
            )
            args += [host_binary("sh"), "-c", script, "sh", *self.cgroup_procs, "--"]
            args += [*pairs, "--"]
        args += self.network
        if self.uid is not None:
            args += [
                host_binary("setpriv"),
                f"--reuid={self.uid}",
                f"--regid={self.uid}",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--",
            ]
        return [*args, *self.jail, *self.command]


def reachable_by_others(path: str) -> bool:
    """Whether an unprivileged uid can reach `path`: every directory above it searchable by
    others (bubblewrap resolves bind sources as the sandbox's uid)."""
    path = os.path.realpath(path)
    parts = path.split("/")
    for i in range(2, len(parts) + 1):
        try:
            mode = os.stat("/".join(parts[:i]) or "/").st_mode
        except OSError:
            return False
        if i < len(parts) and not mode & 0o001:
            return False
    return bool(os.stat(path).st_mode & 0o005)
