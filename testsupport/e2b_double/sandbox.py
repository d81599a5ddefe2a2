"""One double sandbox: a directory standing in for the VM disk, and its processes.

Every process runs under bubblewrap with the sandbox's own `/workspace`, `/home/user` and
`/tmp` bound from that directory, in fresh user and pid namespaces, sharing the host network
(so a server inside is reachable on 127.0.0.1 and can reach the studio). It runs as the user
envd was asked for (the template's default user unless a request names another), in the
template's WORKDIR unless told otherwise. Killing a process's outer `bwrap` tears its pid
namespace down, so even a detached grandchild dies with it, like a process tree in a VM that
is destroyed.

Pausing freezes every process (SIGSTOP down each tree, repeated until no new child appears)
and stops the timeout clock; resuming sends SIGCONT. A killed sandbox cuts the streams of the
commands still running, as E2B's edge does, instead of reporting them as exited.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import shutil
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from connectrpc.code import Code
from connectrpc.errors import ConnectError
from e2b.envd.process import process_pb
from protobuf import Oneof

BWRAP = shutil.which("bwrap") or "/usr/bin/bwrap"
# Paths inside the sandbox that the double backs with the sandbox's own directory.
MOUNTS = {"/workspace": "workspace", "/home/user": "home", "/tmp": "tmp"}  # noqa: S108 (sandbox paths)
READ_ONLY_SYSTEM = ("/usr", "/etc", "/proc")
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
# The users an E2B base image has: name -> (uid, home).
USERS = {"user": (1000, "/home/user"), "root": (0, "/root")}
START_CMD_TAG = "start_cmd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class DoubleTemplate:
    """What a template boots. `start_cmd` may hold `{port_8080}`-style placeholders: each
    port in `ports` is published on a free loopback port, and the command is told which.
    `env` is the template's own environment (Dockerfile ENV): like E2B, it applies to the
    start command only, never to commands run later, and the per-sandbox envVars do not reach
    the start command (a snapshot-booted process never sees them). `user` and `workdir` are
    the image's USER and WORKDIR: the defaults for every command."""

    start_cmd: str = ""
    ports: tuple[int, ...] = (8080,)
    env: dict[str, str] = field(default_factory=dict)
    user: str = "user"
    workdir: str = "/home/user"
    cpu_count: int = 2
    memory_mb: int = 512


class Proc:
    """A process started through envd, with its output kept as ProcessEvents."""

    def __init__(self, pid: int, popen: asyncio.subprocess.Process, config, tag: str | None):
        self.pid = pid
        self.popen = popen
        self.config = config
        self.tag = tag
        self.events: list[process_pb.ProcessEvent] = []
        self.ended = False
        self.cut = ""  # set when the sandbox dies under the process: its streams break
        self._cond = asyncio.Condition()
        self.loop = asyncio.get_running_loop()

    async def emit(self, event: process_pb.ProcessEvent, *, end: bool = False) -> None:
        async with self._cond:
            self.events.append(event)
            self.ended = self.ended or end
            self._cond.notify_all()

    async def follow(self, start: int):
        """Yield events from index `start` until the end event; raise UNAVAILABLE if the
        sandbox is killed first (the SDK then probes the sandbox and reports it gone)."""
        i = start
        while True:
            async with self._cond:
                await self._cond.wait_for(
                    lambda i=i: len(self.events) > i or self.ended or self.cut
                )
                batch, i = self.events[i:], len(self.events)
                ended, cut = self.ended, self.cut
            if cut:
                raise ConnectError(Code.UNAVAILABLE, cut)
            for event in batch:
                yield event
            if ended and i >= len(self.events):
                return

    async def wake(self) -> None:
        async with self._cond:
            self._cond.notify_all()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.popen.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, sig)


class DoubleSandbox:
    def __init__(
        self,
        *,
        sandbox_id: str,
        template_id: str,
        template: DoubleTemplate,
        root: Path,
        timeout: int,
        metadata: dict[str, str],
        env_vars: dict[str, str],
        access_token: str,
        ro_binds: tuple[str, ...],
    ):
        self.sandbox_id = sandbox_id
        self.template_id = template_id
        self.template = template
        self.root = root
        self.metadata = metadata
        self.env_vars = env_vars
        self.access_token = access_token
        self.ro_binds = ro_binds
        self.started_at = time.time()
        self.end_at = self.started_at + timeout
        self.state = "running"
        self.on_timeout = "kill"  # or "pause" (lifecycle on_timeout / autoPause)
        self.paused_at: float | None = None
        self.procs: dict[int, Proc] = {}
        self.watchers: dict = {}  # id -> watch.Watcher
        self.ports = {port: free_port() for port in template.ports}
        for sub in MOUNTS.values():
            (root / sub).mkdir(parents=True, exist_ok=True)

    # --- paths -----------------------------------------------------------------------

    def host_path(self, path: str) -> Path | None:
        """The host path behind a sandbox path, or None if the double does not back it."""
        path = posixpath.normpath("/" + path.lstrip("/"))
        for mount, sub in MOUNTS.items():
            if path == mount or path.startswith(mount + "/"):
                return self.root / sub / path[len(mount) :].lstrip("/")
        return None

    def readonly_host_path(self, path: str) -> Path | None:
        """The host path behind a read-only system path every jail sees as the host's
        (`/usr`, `/etc`, `/proc`), for reads only."""
        path = posixpath.normpath("/" + path.lstrip("/"))
        if any(path == p or path.startswith(p + "/") for p in READ_ONLY_SYSTEM):
            return Path(path)
        return None

    def resolve(self, path: str) -> str:
        """Follow symlinks the way the sandbox sees them (absolute targets are sandbox
        paths). Components that do not exist are kept as they are, like `realpath -m`."""
        parts = [p for p in posixpath.normpath("/" + path.lstrip("/")).split("/") if p]
        done = "/"
        hops = 0
        while parts:
            candidate = posixpath.join(done, parts.pop(0))
            host = self.host_path(candidate)
            if host is not None and host.is_symlink() and hops < 40:
                hops += 1
                target = os.readlink(host)
                joined = posixpath.normpath(posixpath.join(done, target))
                parts = [p for p in joined.split("/") if p] + parts
                done = "/"
            else:
                done = candidate
        return done

    # --- processes -------------------------------------------------------------------

    def _bwrap_argv(self, cwd: str, argv: list[str], uid: int) -> list[str]:
        cmd = [
            BWRAP,
            "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--die-with-parent", "--new-session", "--uid", str(uid), "--gid", str(uid),
            "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
            "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
            "--ro-bind", "/etc", "/etc", "--dev", "/dev", "--proc", "/proc",
        ]  # fmt: skip
        for mount, sub in MOUNTS.items():
            cmd += ["--bind", str(self.root / sub), mount]
        for path in self.ro_binds:
            cmd += ["--ro-bind-try", path, path]
        return [*cmd, "--chdir", cwd, *argv]

    def home(self, user: str = "") -> str:
        return USERS.get(user or self.template.user, USERS["user"])[1]

    async def spawn(
        self,
        config,
        *,
        user: str = "",
        stdin: bool = False,
        sandbox_env: bool = True,
        tag: str | None = None,
    ) -> Proc:
        """Start `config` as `user` (default: the template's). Commands see the sandbox's
        envVars and their own envs, never the template's ENV (that is the start command's)."""
        user = user or self.template.user
        uid, home = USERS[user]
        env = {
            "PATH": SANDBOX_PATH,
            "HOME": home,
            "USER": user,
            "LANG": "C.UTF-8",
            **(self.env_vars if sandbox_env else {}),
            **dict(config.envs),
        }
        cwd = config.cwd if config.has_field("cwd") and config.cwd else self.template.workdir
        popen = await asyncio.create_subprocess_exec(
            *self._bwrap_argv(cwd, [config.cmd, *config.args], uid),
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        proc = Proc(popen.pid, popen, config, tag)
        self.procs[proc.pid] = proc
        asyncio.get_running_loop().create_task(self._pump(proc))
        return proc

    async def _pump(self, proc: Proc) -> None:
        async def read(stream, name):
            while chunk := await stream.read(65536):
                data = process_pb.ProcessEvent.DataEvent(output=Oneof(name, chunk))
                await proc.emit(process_pb.ProcessEvent(event=Oneof("data", data)))

        await asyncio.gather(read(proc.popen.stdout, "stdout"), read(proc.popen.stderr, "stderr"))
        code = await proc.popen.wait()
        if proc.cut:  # the sandbox was killed under it: no end event, the stream breaks
            self.procs.pop(proc.pid, None)
            await proc.wake()
            return
        status = f"exit status {code}" if code >= 0 else f"signal: {signal.Signals(-code).name}"
        end = process_pb.ProcessEvent.EndEvent(
            exit_code=code if code >= 0 else -1, exited=code >= 0, status=status
        )
        await proc.emit(process_pb.ProcessEvent(event=Oneof("end", end)), end=True)
        self.procs.pop(proc.pid, None)

    async def boot(self) -> None:
        """Run the template's start command, as the template's snapshot would have."""
        if not self.template.start_cmd:
            return
        cmd = self.template.start_cmd.format(
            **{f"port_{port}": local for port, local in self.ports.items()}
        )
        # E2B starts the start command through envd with the template's ENV as its envs,
        # tagged, so `commands.list()` shows it with that environment.
        config = process_pb.ProcessConfig(
            cmd="/bin/bash", args=["-l", "-c", cmd], envs=dict(self.template.env)
        )
        config.cwd = self.template.workdir
        await self.spawn(config, sandbox_env=False, tag=START_CMD_TAG)

    # --- lifecycle -------------------------------------------------------------------

    def pause(self) -> None:
        """Freeze every process and stop the timeout clock."""
        self.state = "paused"
        self.paused_at = time.time()
        for proc in list(self.procs.values()):
            _signal_tree(proc.popen.pid, signal.SIGSTOP)

    def resume(self, timeout: int) -> None:
        """Thaw the processes; the sandbox then lives `timeout` seconds from now."""
        for proc in list(self.procs.values()):
            _signal_tree(proc.popen.pid, signal.SIGCONT)
        self.state = "running"
        self.paused_at = None
        self.end_at = time.time() + timeout

    def kill(self) -> None:
        """Destroy the sandbox: kill every process tree (their streams break, see _pump),
        then remove its disk."""
        self.state = "killed"
        message = f"the connection to sandbox {self.sandbox_id} ended before the stream completed"
        for proc in list(self.procs.values()):
            proc.cut = message
            # The whole tree: a process killed while bwrap was still setting up its
            # namespace could otherwise outlive it, holding the output pipes open.
            _signal_tree(proc.popen.pid, signal.SIGKILL)
            # Break the streams now, not when the pipes close (kill may come from a thread).
            with contextlib.suppress(RuntimeError):  # the double's loop is already closed
                proc.loop.call_soon_threadsafe(lambda p=proc: asyncio.ensure_future(p.wake()))
        shutil.rmtree(self.root, ignore_errors=True)


def _parents() -> dict[int, list[int]]:
    """{ppid: [pid, ...]} of every process on the host, from /proc/<pid>/stat."""
    tree: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError):
                with open(f"/proc/{name}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                tree.setdefault(ppid, []).append(int(name))
    return tree


def _signal_tree(root: int, sig: int) -> None:
    """Signal a process and all its descendants, parents first, walking again until a pass
    finds no process it has not signalled (a child forked mid-walk is caught next pass)."""
    done: set[int] = set()
    while True:
        tree, todo, fresh = _parents(), [root], 0
        while todo:
            pid = todo.pop()
            if pid not in done:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
                done.add(pid)
                fresh += 1
            todo += tree.get(pid, [])
        if not fresh:
            return
