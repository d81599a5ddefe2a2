"""One double sandbox: a directory standing in for the VM disk, and its processes.

Every process runs under bubblewrap with the sandbox's own `/workspace`, `/home/user` and
`/tmp` bound from that directory, as uid 1000 in fresh user and pid namespaces, sharing the
host network (so a server inside is reachable on 127.0.0.1 and can reach the studio). Killing
a process's outer `bwrap` tears its pid namespace down, so even a detached grandchild dies
with it, like a process tree in a VM that is destroyed.
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

from e2b.envd.process import process_pb
from protobuf import Oneof

BWRAP = shutil.which("bwrap") or "/usr/bin/bwrap"
# Paths inside the sandbox that the double backs with the sandbox's own directory.
MOUNTS = {"/workspace": "workspace", "/home/user": "home", "/tmp": "tmp"}  # noqa: S108 (sandbox paths)
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
UID = 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class DoubleTemplate:
    """What a template boots. `start_cmd` may hold `{port_8080}`-style placeholders: each
    port in `ports` is published on a free loopback port, and the command is told which.
    `env` is the template's own environment (not the per-sandbox envVars, which a real
    snapshot-booted start command never sees)."""

    start_cmd: str = ""
    ports: tuple[int, ...] = (8080,)
    env: dict[str, str] = field(default_factory=dict)


class Proc:
    """A process started through envd, with its output kept as ProcessEvents."""

    def __init__(self, pid: int, popen: asyncio.subprocess.Process, config, tag: str | None):
        self.pid = pid
        self.popen = popen
        self.config = config
        self.tag = tag
        self.events: list[process_pb.ProcessEvent] = []
        self.ended = False
        self._cond = asyncio.Condition()

    async def emit(self, event: process_pb.ProcessEvent, *, end: bool = False) -> None:
        async with self._cond:
            self.events.append(event)
            self.ended = self.ended or end
            self._cond.notify_all()

    async def follow(self, start: int):
        """Yield events from index `start` until the end event."""
        i = start
        while True:
            async with self._cond:
                await self._cond.wait_for(lambda i=i: len(self.events) > i or self.ended)
                batch, i = self.events[i:], len(self.events)
                ended = self.ended
            for event in batch:
                yield event
            if ended and i >= len(self.events):
                return

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
        self.procs: dict[int, Proc] = {}
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

    def _bwrap_argv(self, cwd: str, argv: list[str]) -> list[str]:
        cmd = [
            BWRAP,
            "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--die-with-parent", "--new-session", "--uid", str(UID), "--gid", str(UID),
            "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
            "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
            "--ro-bind", "/etc", "/etc", "--dev", "/dev", "--proc", "/proc",
        ]  # fmt: skip
        for mount, sub in MOUNTS.items():
            cmd += ["--bind", str(self.root / sub), mount]
        for path in self.ro_binds:
            cmd += ["--ro-bind-try", path, path]
        return [*cmd, "--chdir", cwd, *argv]

    async def spawn(
        self, config, *, stdin: bool = False, extra_env: dict[str, str] | None = None
    ) -> Proc:
        env = {
            "PATH": SANDBOX_PATH,
            "HOME": "/home/user",
            "USER": "user",
            "LANG": "C.UTF-8",
            **(extra_env if extra_env is not None else self.env_vars),
            **dict(config.envs),
        }
        cwd = config.cwd if config.has_field("cwd") and config.cwd else "/home/user"
        popen = await asyncio.create_subprocess_exec(
            *self._bwrap_argv(cwd, [config.cmd, *config.args]),
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        proc = Proc(popen.pid, popen, config, None)
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
        config = process_pb.ProcessConfig(cmd="/bin/bash", args=["-l", "-c", cmd])
        config.cwd = "/home/user"
        await self.spawn(config, extra_env=dict(self.template.env))

    def kill(self) -> None:
        """Destroy the sandbox: every process tree, then its disk."""
        self.state = "killed"
        for proc in list(self.procs.values()):
            proc.kill()
        shutil.rmtree(self.root, ignore_errors=True)
