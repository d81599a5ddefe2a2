"""Local sandboxes: bubblewrap jails on the studio's own machine.

Layout under `data_dir` (0711: sandbox uids may pass through, not list):

    sandboxes/<sandbox_id>/             root, 0711
        state.json                      external_id, pids, port, uid, agent, created, deadline
        env.json                        the sandbox's variables (root-only; exec reads them)
        runtime.log                     the runtime's stdout and stderr (outside the jail)
        disk.img                        its file system (local_disk.py), mounted at fs/
        fs/                             owned by the sandbox's uid, 0700
        fs/workspace/                   bound at /workspace
        fs/home/                        bound at /home/agent (HOME; keeps Claude transcripts)
    local-jail/                         passwd, group and an empty dir that every jail binds

Each sandbox runs as its own host uid from `uid_range` (allocated under the lock, recorded
in state.json, free again once kill has removed it), in a cgroup of its own with process,
memory and CPU limits (local_cgroups.py), with a seccomp filter (local_seccomp.py), and
is started through a fixed chain of host commands that no user input reaches
(local_launch.py).

The external id is the sandbox id. A jail is started in its own session and without
--die-with-parent, so it survives a studio restart; state.json lets any process find it
again, and the pid is trusted only while its start time still matches (pid reuse).

`exec` starts a fresh bwrap with the same binds instead of entering the running jail with
nsenter: a process that joins the jail's user namespace holds every capability in it and
would have to drop them all correctly before running user code, while a fresh bwrap is the
same audited setup as the runtime and costs a few milliseconds. When its command returns or
times out, exec kills that jail's pid namespace, so background processes (nohup, setsid, a
daemon) die with it; /tmp is not shared with the runtime (the workspace and HOME are).

`kill` kills every process of the sandbox's uid and cgroup until none is left, then deletes
its directory, workspace and HOME included: a stopped sandbox is gone at every provider.

Timeouts: `set_timeout` records a deadline; the studio's reaper enforces it, and this backend
also kills an overdue sandbox whenever it looks at it (connect, list, exec, files).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import logging
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from sandboxes.backends import (
    local_cgroups,
    local_disk,
    local_jail,
    local_launch,
    local_net,
    local_seccomp,
)
from sandboxes.backends.base import (
    MAX_OUTPUT_BYTES,
    RUNTIME_PORT,
    TIMEOUT_EXIT_CODE,
    WORKSPACE,
    BackendError,
    CreateSpec,
    DirEntry,
    ExecResult,
    PathNotUsable,
    SandboxBackend,
    SandboxGone,
    SandboxHandle,
    SandboxInfo,
)
from sandboxes.backends.local_files import Workspace

log = logging.getLogger(__name__)

ISOLATIONS = ("bwrap", "none")
MARKER = "AGENT_STUDIO_SANDBOX"
EXIT_GRACE = 0.2  # seconds to collect output after an exec's command has exited
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
DEFAULT_UID_RANGE = (1300000, 1365535)
_DEFAULT_RUNTIME_DIR = str(Path(__file__).resolve().parents[2] / "agent_runtime")
_warned_unisolated = False
# Popen objects of the jails this process started, so that kill() can reap them whichever
# LocalBackend instance calls it (a zombie bwrap would otherwise linger until we exit).
_children: dict[int, subprocess.Popen] = {}
_children_lock = threading.Lock()


class LocalBackend(SandboxBackend):
    """Sandboxes as bubblewrap jails (or plain processes with isolation="none")."""

    name = "local"

    def __init__(
        self,
        *,
        data_dir: str | os.PathLike,
        isolation: str = "bwrap",
        python: str = sys.executable,
        runtime_command: list[str] | None = None,
        runtime_dir: str = _DEFAULT_RUNTIME_DIR,
        rlimits: dict[str, int | None] | None = None,
        tmpfs_bytes: int = 256 << 20,
        max_output_bytes: int = MAX_OUTPUT_BYTES,
        max_read_bytes: int = 64 << 20,
        host: str = "127.0.0.1",
        uid_range: tuple[int, int] = DEFAULT_UID_RANGE,
        limits: local_cgroups.Limits | None = None,
        disk_bytes: int = 1 << 30,
        seccomp: bool = True,
        studio_urls=None,
        net_uid: int = local_net.DEFAULT_NET_UID,
    ):
        """`runtime_command` is argv with `{python}`, `{port}` and `{workspace}` filled in;
        by default `{python} -m agent_runtime serve --host 127.0.0.1 --port {port}
        --workspace {workspace}` ({port} is 8080 in a jail, which has a network of its own,
        and a free loopback port without one).
        `rlimits` overrides the defaults in local_jail.RLIMITS by name; None lifts one.
        `uid_range` (first, last) are the host uids sandboxes run as, one each; `limits`
        their cgroup limits; `disk_bytes` the size of each one's disk (0: no quota).
        `studio_urls()` returns the studio's URLs at create (BACKEND_API_URL): the only
        host loopback ports a jail reaches (local_net.py); `net_uid` (and net_uid + 1) the
        host uids of its network helpers."""
        if isolation not in ISOLATIONS:
            raise ValueError(f"isolation must be one of {ISOLATIONS}, not {isolation!r}")
        first, last = uid_range
        if not 1000 <= first <= last < 2**31:
            raise ValueError(f"uid_range must be ascending uids from 1000 up, not {uid_range}")
        self.data_dir = Path(data_dir).resolve()
        self.isolation = isolation
        # Absolute, with the directories resolved but not the file itself: a venv's python
        # is a symlink that must stay inside the venv for its site-packages to count, and
        # the jail binds the venv at its real path.
        python = os.path.abspath(python)
        self.python = os.path.join(
            os.path.realpath(os.path.dirname(python)), os.path.basename(python)
        )
        self.runtime_command = runtime_command or [
            *("{python}", "-m", "agent_runtime", "serve", "--host", "127.0.0.1"),
            *("--port", "{port}", "--workspace", "{workspace}"),
        ]
        self.runtime_dir = str(Path(runtime_dir).resolve())
        self.cgroups = local_cgroups.Cgroups(limits or local_cgroups.Limits())
        defaults = dict(local_jail.DEFAULT_RLIMITS)
        if self.cgroups.kind is not None:
            defaults["as"] = None  # the cgroup bounds memory; see local_jail.RLIMITS
        self.rlimits = {**defaults, **(rlimits or {})}
        local_jail.check_rlimits(self.rlimits)
        self.tmpfs_bytes = tmpfs_bytes
        self.max_output_bytes = max_output_bytes
        self.max_read_bytes = max_read_bytes
        self.host = host
        self.uid_range = (first, last)
        self.disk_bytes = disk_bytes if isolation == "bwrap" else 0
        self.seccomp = seccomp
        self.studio_urls = studio_urls or tuple
        self.net_uid = net_uid
        self._python_dirs: tuple[str, ...] | None = None

    # --- paths and state ---------------------------------------------------------------

    def _sandbox_dir(self, external_id: str) -> Path:
        if not isinstance(external_id, str) or not _ID_RE.match(external_id):
            raise SandboxGone(f"No local sandbox {external_id!r}.")
        return self.data_dir / "sandboxes" / external_id

    def _load(self, external_id: str) -> dict:
        """The state of a live sandbox; SandboxGone if it is dead, overdue or unknown."""
        try:
            state = json.loads((self._sandbox_dir(external_id) / "state.json").read_text())
        except (FileNotFoundError, ValueError):
            raise SandboxGone() from None
        if not self._alive(state):
            local_jail.reap_children([state["pid"]])
            raise SandboxGone("The sandbox's processes have exited.")
        if state.get("deadline") and time.time() > state["deadline"]:
            log.info("local sandbox past its deadline, killing external_id=%s", external_id)
            self.kill(external_id)
            raise SandboxGone("The sandbox timed out.")
        return state

    def _save(self, state: dict) -> None:
        path = self._sandbox_dir(state["external_id"]) / "state.json"
        _write_private(path, json.dumps(state, indent=1))

    def _alive(self, state: dict) -> bool:
        # The start time pins the pid (exited, a zombie, or reused by someone else: no).
        return local_jail.proc_start_time(state["pid"]) == state["pid_start"]

    @contextlib.contextmanager
    def _lock(self):
        """Serialises create and kill across processes (the reaper, web, workers)."""
        root = self.data_dir / "sandboxes"
        root.mkdir(parents=True, exist_ok=True)
        # Searchable, not listable: a sandbox uid must reach its own fs/ (bwrap resolves
        # bind sources as that uid), and learns nothing else here.
        os.chmod(self.data_dir, 0o711)  # noqa: S103
        os.chmod(root, 0o711)  # noqa: S103
        with open(root / ".lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _workspace(self, external_id: str) -> Workspace:
        state = self._load(external_id)
        uid = state.get("uid")
        return Workspace(state["workspace"], owner=(uid, uid) if uid is not None else None)

    def _allocate_uid(self) -> int:
        """The lowest uid of the range that no sandbox holds and no process runs as.
        Called under the lock."""
        held = set()
        for path in (self.data_dir / "sandboxes").glob("*/state.json"):
            with contextlib.suppress(OSError, ValueError, KeyError):
                held.add(json.loads(path.read_text())["uid"])
        first, last = self.uid_range
        running = local_jail.uids_in_use(first, last)
        for uid in range(first, last + 1):
            if uid not in held and uid not in running:
                return uid
        raise BackendError(
            f"Every sandbox uid in {first}-{last} is in use (SANDBOX_UID_RANGE).",
            code="SandboxCapacity",
        )

    # --- the jail ----------------------------------------------------------------------

    def _layout(self, sandbox_dir: Path) -> local_jail.JailLayout:
        jail_dir = str(self.data_dir / "local-jail")
        workspace = str(sandbox_dir / "fs" / "workspace")
        home = str(sandbox_dir / "fs" / "home")
        python_dirs = self._python_bind_dirs()
        sources = [
            workspace,
            home,
            self.runtime_dir,
            *python_dirs,
            *(os.path.join(jail_dir, n) for n in ("passwd", "group", "empty")),
        ]
        return local_jail.JailLayout(
            workspace=workspace,
            home=home,
            jail_dir=jail_dir,
            runtime_dir=self.runtime_dir,
            python_dirs=python_dirs,
            tmpfs_bytes=self.tmpfs_bytes,
            # Every bind source reaches the jail through a mount point of its own in the
            # chain's mount namespace, so that bwrap (as the sandbox uid) can reach an
            # interpreter under /root, and its argv names no host path.
            remapped=tuple((src, f"{local_launch.MNT_ROOT}/{n}") for n, src in enumerate(sources)),
        )

    def _python_bind_dirs(self) -> tuple[str, ...]:
        """The interpreter's prefix and base prefix (a venv and the Python it was made from),
        minus what /usr already shows."""
        if self._python_dirs is None:
            if self.python == os.path.abspath(sys.executable) or self.python == _real_executable():
                prefixes = [sys.prefix, sys.base_prefix]
            else:
                out = subprocess.run(
                    [self.python, "-c", "import sys; print(sys.prefix); print(sys.base_prefix)"],
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=30,
                    env=local_launch.HOST_ENV,
                ).stdout
                prefixes = out.split()
            dirs = []
            for prefix in prefixes:
                real = os.path.realpath(prefix)
                if real != "/usr" and not real.startswith("/usr/") and real not in dirs:
                    dirs.append(real)
            self._python_dirs = tuple(dirs)
        return self._python_dirs

    def _jail_env(self, *, home: str, pythonpath: str) -> dict[str, str]:
        """The studio's constants for every process of the sandbox (no user input)."""
        path = local_jail.SANDBOX_PATH
        venv = os.path.dirname(os.path.dirname(self.python))
        if os.path.exists(os.path.join(venv, "pyvenv.cfg")):
            path = f"{os.path.dirname(self.python)}:{path}"
        # The interpreter is the studio's read-only venv: packages the agent installs go to
        # HOME (pip honours PIP_TARGET), which is on the import path.
        packages = os.path.join(home, ".local", "python-packages")
        return {
            **_trusted_ca_env(),
            **(_node_env() if self.rlimits.get("as") else {}),
            "PATH": path,
            "HOME": home,
            "USER": "agent",
            "LOGNAME": "agent",
            "SHELL": "/bin/bash",
            "LANG": "C.UTF-8",
            "TMPDIR": "/tmp",  # noqa: S108 - the jail's own tmpfs
            "PYTHONPATH": f"{pythonpath}:{packages}" if pythonpath else packages,
            "PIP_TARGET": packages,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PYTHONUNBUFFERED": "1",
        }

    def network_prefix(self, state: dict) -> list[str]:
        """`nsenter --net=<the sandbox's namespace> --`, run as root right before
        privileges drop, so the runtime and every exec share the namespace that
        local_net.start made. Fails closed: a jail never starts on the host's network."""
        net = local_net.load(self._sandbox_dir(state["external_id"]) / "net.json")
        if not net:
            raise BackendError("The sandbox's network is gone.", code="SandboxNetworkUnavailable")
        return local_net.enter_argv(net)

    def _spawn(
        self,
        state: dict,
        command: list[str],
        *,
        env: dict[str, str],
        chdir: str,
        stdout,
        stderr,
    ):
        """Start `command` in the sandbox through the launch chain (local_launch.py) in a
        new session, with `env` delivered inside only. Returns (Popen, pid whose death ends
        everything): with bwrap, the jail's init (from --info-fd; SIGKILL on it takes the
        whole pid namespace down), else the process itself."""
        sandbox_dir = self._sandbox_dir(state["external_id"])
        isolated = self.isolation == "bwrap"
        layout = self._layout(sandbox_dir)
        base = self._jail_env(
            home=local_jail.HOME if isolated else layout.home,
            pythonpath=local_jail.RUNTIME_MOUNT if isolated else os.path.dirname(self.runtime_dir),
        )
        env_fd = local_launch.env_memfd(env)
        fds = [env_fd]
        launcher = [self.python, "-m", "agent_runtime.launch", "--env-fd", str(env_fd), "--"]
        chain = local_launch.Chain(
            rlimits=local_jail.rlimit_prefix(self.rlimits),
            cgroup_procs=self.cgroups.procs_files(state["external_id"])
            if state.get("cgroup")
            else [],
            command=[*launcher, *command],
        )
        read_fd = write_fd = None
        try:
            if not isolated:
                host_env = {**local_launch.HOST_ENV, **base, MARKER: state["external_id"]}
                proc = subprocess.Popen(
                    chain.argv(),
                    env=host_env,
                    cwd=chdir,
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=stderr,
                    pass_fds=tuple(fds),
                    start_new_session=True,
                )
                return proc, proc.pid
            read_fd, write_fd = os.pipe()
            seccomp_fd = None
            if self.seccomp:
                seccomp_fd = local_launch.bpf_memfd(local_seccomp.program())
                fds.append(seccomp_fd)
            chain.binds = list(layout.remapped)
            chain.network = self.network_prefix(state)
            base.update(local_net.jail_env(local_net.load(sandbox_dir / "net.json")))
            chain.uid = state["uid"]
            chain.jail = layout.argv(
                chdir=chdir, info_fd=write_fd, setenv=base, seccomp_fd=seccomp_fd
            )
            proc = subprocess.Popen(
                chain.argv(),
                env=local_launch.HOST_ENV,
                cwd="/",
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                pass_fds=(*fds, write_fd),
                start_new_session=True,
            )
        finally:
            for fd in fds:
                os.close(fd)
            if write_fd is not None:
                os.close(write_fd)
        try:
            info = _read_all(read_fd, timeout=10.0)
        finally:
            os.close(read_fd)
        try:
            return proc, json.loads(info)["child-pid"]
        except (ValueError, KeyError):
            proc.kill()
            proc.wait()
            raise BackendError("bubblewrap failed to start the sandbox.") from None

    def _require_bwrap(self) -> None:
        if self.isolation == "bwrap" and not shutil.which("bwrap", path=local_launch.HOST_PATH):
            raise BackendError(
                "Local sandboxes need bubblewrap: install it (Debian/Ubuntu: apt-get install "
                "bubblewrap) or set SANDBOX_LOCAL_ISOLATION=none to run sandboxes without "
                "isolation.",
                code="BubblewrapMissing",
            )

    def _warn_unisolated(self) -> None:
        global _warned_unisolated
        if self.isolation == "none" and not _warned_unisolated:
            _warned_unisolated = True
            log.warning(
                "SANDBOX_LOCAL_ISOLATION=none: local sandboxes run as plain processes of the "
                "studio's user and are NOT isolated from the host or from each other."
            )

    # --- SandboxBackend ----------------------------------------------------------------

    def create(self, spec: CreateSpec) -> SandboxHandle:
        """Start the jail with agent_runtime on a free loopback port; returns at once (the
        caller waits for /health). BackendError if the id is in use or bwrap is missing."""
        self._require_bwrap()
        self._warn_unisolated()
        if not _ID_RE.match(spec.sandbox_id):
            raise BackendError(f"Invalid sandbox id {spec.sandbox_id!r}.")
        local_launch.check_env(spec.env)
        sandbox_dir = self._sandbox_dir(spec.sandbox_id)
        isolated = self.isolation == "bwrap"
        with self._lock():
            if (sandbox_dir / "state.json").exists():
                raise BackendError(f"Local sandbox {spec.sandbox_id} already exists.")
            local_jail.write_identity_files(str(self.data_dir / "local-jail"))
            sandbox_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(sandbox_dir, 0o711)  # noqa: S103 - see _lock
            uid = self._allocate_uid() if isolated else None
            layout = self._layout(sandbox_dir)
            state = {
                "external_id": spec.sandbox_id,
                "sandbox_id": spec.sandbox_id,
                "agent_id": spec.agent_id,
                "isolation": self.isolation,
                "uid": uid,
                "cgroup": False,
                "disk": False,
                "pid": None,
                "pid_start": None,
                "workspace": layout.workspace,
            }
            # Saved before anything is made, so that kill finds and undoes every piece.
            self._save(state)
            try:
                self._make_pieces(state, sandbox_dir, layout)
                proc, child_pid, port = self._start_runtime(spec, state, sandbox_dir)
            except BaseException:
                self._kill_locked(spec.sandbox_id)
                raise
            with _children_lock:
                _children[proc.pid] = proc
            now = time.time()
            state.update(
                pid=proc.pid,
                pid_start=local_jail.proc_start_time(proc.pid),
                child_pid=child_pid,
                port=port,
                created=now,
                deadline=now + spec.timeout_seconds if spec.timeout_seconds else None,
            )
            self._save(state)
        log.info(
            "local sandbox started external_id=%s pid=%s port=%s uid=%s isolation=%s",
            spec.sandbox_id,
            proc.pid,
            port,
            uid,
            self.isolation,
        )
        return SandboxHandle(external_id=spec.sandbox_id, runtime_url=f"http://{self.host}:{port}")

    def _make_pieces(self, state: dict, sandbox_dir: Path, layout) -> None:
        """The sandbox's disk, directories and cgroup (recorded in state as they exist)."""
        uid = state["uid"]
        if state["isolation"] == "bwrap":
            state["disk"] = self.disk_bytes > 0
            self._save(state)
            local_disk.create(
                image=str(sandbox_dir / "disk.img"),
                mountpoint=str(sandbox_dir / "fs"),
                size_bytes=self.disk_bytes,
                uid=uid,
            )
        else:
            (sandbox_dir / "fs").mkdir(exist_ok=True)
        for sub, mode in (("workspace", 0o755), ("home", 0o700)):
            path = sandbox_dir / "fs" / sub
            path.mkdir(exist_ok=True)
            if uid is not None:
                os.chown(path, uid, uid)
            os.chmod(path, mode)
        if self.cgroups.kind is not None:
            state["cgroup"] = True
            self._save(state)
            self.cgroups.create(state["external_id"])
        _write_profile(
            Path(layout.home), path=self._jail_env(home="", pythonpath="")["PATH"], uid=uid
        )

    def _start_runtime(self, spec: CreateSpec, state: dict, sandbox_dir: Path):
        isolated = self.isolation == "bwrap"
        _write_private(sandbox_dir / "env.json", json.dumps(spec.env))
        port = _free_port(self.host)
        if isolated:
            # The runtime serves 8080 in the jail's own namespace; pasta forwards `port` on
            # the host's 127.0.0.1 to it. kill() stops the network whatever happens next.
            local_net.start(
                name=local_net.netns_name(self.data_dir, spec.sandbox_id),
                policy=spec.network_policy,
                allowlist=spec.network_allowlist,
                studio_urls=tuple(self.studio_urls()),
                runtime_port=port,
                host=self.host,
                net_uid=self.net_uid,
                state_path=sandbox_dir / "net.json",
                log_path=sandbox_dir / "net.log",
            )
        workspace = WORKSPACE if isolated else state["workspace"]
        command = [
            part.format(
                python=self.python, port=RUNTIME_PORT if isolated else port, workspace=workspace
            )
            for part in self.runtime_command
        ]
        log_path = sandbox_dir / "runtime.log"
        with open(log_path, "ab") as out:
            os.chmod(log_path, 0o600)
            try:
                proc, child_pid = self._spawn(
                    state,
                    command,
                    env={**spec.env, "RUNTIME_TOKEN": spec.runtime_token},
                    chdir=WORKSPACE if isolated else state["workspace"],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            except BackendError:
                # bwrap's own message names host paths: log it, keep it from the user.
                tail = log_path.read_bytes()[-2000:].decode(errors="replace")
                log.warning(
                    "local sandbox failed to start external_id=%s: %s", spec.sandbox_id, tail
                )
                raise
        return proc, child_pid, port

    def connect(self, external_id: str) -> SandboxHandle:
        """Find a jail from its state file (any process may have started it)."""
        state = self._load(external_id)
        return SandboxHandle(
            external_id=external_id, runtime_url=f"http://{self.host}:{state['port']}"
        )

    def exec(
        self,
        external_id: str,
        command: str,
        *,
        timeout: float,
        cwd: str = WORKSPACE,
        env: dict[str, str] | None = None,
    ) -> ExecResult:
        """Run `bash -lc command` as uid 1000 in a fresh jail on the sandbox's workspace and
        HOME, with the sandbox's environment plus `env`. Output beyond max_output_bytes per
        stream is dropped and marked. When the command returns, or on timeout (exit code
        124), the jail is killed whole: nothing it started in the background survives."""
        state = self._load(external_id)
        sandbox_dir = self._sandbox_dir(external_id)
        local_launch.check_env(env or {})
        ws = Workspace(state["workspace"])
        inner_cwd = ws.check_dir(cwd)
        # The sandbox's variables come from the studio's own root-only record, never from
        # the jail (whose processes can rewrite their own environment).
        try:
            merged = json.loads((sandbox_dir / "env.json").read_text())
        except (FileNotFoundError, ValueError):
            merged = {}
        merged.update(env or {})
        isolated = self.isolation == "bwrap"
        chdir = inner_cwd if isolated else state["workspace"] + inner_cwd[len(WORKSPACE) :]
        hits_before = self.limits_hit(external_id)
        proc, child_pid = self._spawn(
            state,
            ["/bin/bash", "-lc", command],
            env=merged,
            chdir=chdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        child_start = local_jail.proc_start_time(child_pid)
        out, err, timed_out = _collect(proc, timeout=timeout, cap=self.max_output_bytes)
        # Returned or timed out: end the jail's pid namespace (its init takes every process
        # in it along), or in isolation "none" the command's session.
        if isolated:
            if local_jail.proc_start_time(child_pid) == child_start:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child_pid, signal.SIGKILL)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        if timed_out:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            # Drain what the killed processes had written, still capped.
            more_out, more_err, _ = _collect(proc, timeout=5.0, cap=self.max_output_bytes)
            out, err = out + more_out, err + more_err
        for stream in (proc.stdout, proc.stderr):
            stream.close()
        proc.wait()
        code = TIMEOUT_EXIT_CODE if timed_out else proc.returncode
        stderr = _decode(err, self.max_output_bytes)
        new_hits = [h for h in self.limits_hit(external_id) if h not in hits_before]
        if new_hits:
            stderr += f"\n[agent studio] {describe_limits(new_hits)}\n"
        return ExecResult(
            stdout=_decode(out, self.max_output_bytes),
            stderr=stderr,
            exit_code=code,
            timed_out=timed_out,
        )

    def write_file(self, external_id: str, path: str, content: bytes) -> None:
        """Write on the host side of the workspace without following any symlink out; the
        file belongs to the sandbox's uid. A full disk is the caller's PathNotUsable."""
        try:
            self._workspace(external_id).write(path, content)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise PathNotUsable(
                    f"The sandbox's disk is full; {path} was not written.", code="SandboxDiskFull"
                ) from None
            raise

    def read_file(self, external_id: str, path: str, *, max_bytes: int | None = None) -> bytes:
        """Read a regular file (at most max_bytes, default max_read_bytes: FileTooLarge)."""
        return self._workspace(external_id).read(path, max_bytes=max_bytes or self.max_read_bytes)

    def list_dir(self, external_id: str, path: str) -> list[DirEntry] | None:
        """List a directory of the workspace (symlinks are listed, not followed)."""
        return self._workspace(external_id).list(path)

    def url_for(self, external_id: str, port: int) -> str:
        """The runtime's port 8080 is forwarded from the loopback port chosen at create. A
        jail has a network of its own: no other port of it is reachable from the host."""
        state = self._load(external_id)
        if port == RUNTIME_PORT:
            return f"http://{self.host}:{state['port']}"
        if state.get("isolation") == "none":
            return f"http://{self.host}:{port}"
        raise BackendError(
            f"Port {port} of a local sandbox is not reachable from the studio; only the "
            f"runtime's port {RUNTIME_PORT} is forwarded.",
            code="PortNotForwarded",
        )

    def set_timeout(self, external_id: str, seconds: int) -> None:
        """Record a deadline `seconds` from now (enforced lazily here and by the reaper)."""
        self._load(external_id)  # SandboxGone (and killed) if already overdue
        with self._lock():
            path = self._sandbox_dir(external_id) / "state.json"
            try:
                state = json.loads(path.read_text())
            except FileNotFoundError:
                raise SandboxGone() from None
            state["deadline"] = time.time() + seconds
            self._save(state)

    def runtime_log(self, external_id: str, *, max_bytes: int = 4000) -> str:
        """The tail of `runtime.log`, which holds the runtime's (and bwrap's) output."""
        try:
            with open(self._sandbox_dir(external_id) / "runtime.log", "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - max_bytes))
                return f.read().decode(errors="replace")
        except (OSError, SandboxGone):
            return ""

    def limits_hit(self, external_id: str) -> list[str]:
        """Which of its limits the sandbox has run into so far: "pids", "memory", "disk".
        Readable until kill, also after its processes died."""
        try:
            sandbox_dir = self._sandbox_dir(external_id)
            state = json.loads((sandbox_dir / "state.json").read_text())
        except (SandboxGone, FileNotFoundError, ValueError):
            return []
        hit = self.cgroups.limits_hit(external_id) if state.get("cgroup") else []
        if state.get("disk") and local_disk.full(str(sandbox_dir / "fs")):
            hit.append("disk")
        return hit

    def kill(self, external_id: str) -> None:
        """Kill every process of the sandbox (verified gone) and delete its directory."""
        try:
            self._sandbox_dir(external_id)
        except SandboxGone:
            return  # not an id we could have made
        with self._lock():
            self._kill_locked(external_id)
        log.info("local sandbox killed external_id=%s", external_id)

    def _kill_locked(self, external_id: str) -> None:
        sandbox_dir = self._sandbox_dir(external_id)
        state_path = sandbox_dir / "state.json"
        try:
            state = json.loads(state_path.read_text())
        except (FileNotFoundError, ValueError):
            state = {}
        uid = state.get("uid")

        def find() -> list[int]:
            pids = set(self.cgroups.pids(external_id)) if state.get("cgroup") else set()
            if uid is not None:
                pids |= set(local_jail.processes_of_uid(uid))
            if state.get("pid") and local_jail.proc_start_time(state["pid"]) == state.get(
                "pid_start"
            ):
                pids.add(state["pid"])
            if state.get("isolation") == "none" or not state:
                pids |= set(
                    local_jail.find_processes(
                        arg=str(sandbox_dir / "fs" / "workspace"),
                        env_marker=f"{MARKER}={external_id}",
                    )
                )
            return sorted(pids)

        survivors = local_jail.kill_until_gone(find)
        with _children_lock:
            for pid, proc in list(_children.items()):
                if proc.poll() is not None:
                    del _children[pid]
        if survivors:
            raise BackendError(
                f"Could not kill every process of local sandbox {external_id}: {survivors}"
            )
        if state.get("cgroup"):
            self.cgroups.remove(external_id)
        local_net.stop(sandbox_dir / "net.json")
        if state.get("disk"):
            local_disk.remove(
                image=str(sandbox_dir / "disk.img"), mountpoint=str(sandbox_dir / "fs")
            )
        # The state file goes last: until then the uid counts as held.
        shutil.rmtree(sandbox_dir, ignore_errors=True)

    def list(self) -> list[SandboxInfo]:
        """Every live sandbox under data_dir (overdue ones are killed on the way)."""
        root = self.data_dir / "sandboxes"
        found = []
        for state_path in sorted(root.glob("*/state.json")) if root.is_dir() else []:
            try:
                state = self._load(state_path.parent.name)
            except SandboxGone:
                continue
            found.append(
                SandboxInfo(
                    external_id=state["external_id"],
                    sandbox_id=state["sandbox_id"],
                    agent_id=state["agent_id"],
                )
            )
        return found


# --- helpers ---------------------------------------------------------------------------

_LIMIT_TEXT = {
    "pids": "its process limit (SANDBOX_PIDS_MAX): a fork was refused",
    "memory": "its memory limit (SANDBOX_MEMORY_MB): the kernel killed a process",
    "disk": "its disk quota (SANDBOX_DISK_MB): writes fail with ENOSPC",
}


def describe_limits(hits: list[str]) -> str:
    """One sentence naming the limits a sandbox hit, for logs and statuses."""
    return "The sandbox hit " + "; ".join(_LIMIT_TEXT.get(h, h) for h in hits) + "."


def _real_executable() -> str:
    exe = os.path.abspath(sys.executable)
    return os.path.join(os.path.realpath(os.path.dirname(exe)), os.path.basename(exe))


def _write_private(path: Path, text: str) -> None:
    """Replace `path` atomically with a root-only (0600) file."""
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _write_profile(home: Path, *, path: str, uid: int | None) -> None:
    """A login shell (exec runs `bash -lc`) reads /etc/profile, which resets PATH for a
    non-root user; ~/.profile puts back the one the runtime has, plus ~/.local/bin."""
    profile = home / ".profile"
    if not profile.exists():
        profile.write_text(
            "# Written by Agent Studio at sandbox creation; yours to change.\n"
            f'PATH="$HOME/.local/bin:{path}"\n'
            'if [ -n "$BASH_VERSION" ] && [ -f "$HOME/.bashrc" ]; then . "$HOME/.bashrc"; fi\n'
        )
        if uid is not None:
            os.chown(profile, uid, uid)


# The host's TLS trust settings, passed through so pip and npm in a sandbox trust what the
# host trusts (e.g. a corporate proxy's CA). Only files under /etc or /usr, which the jail sees.
_CA_VARIABLES = (
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "PIP_CERT",
)


def _trusted_ca_env() -> dict[str, str]:
    return {
        name: os.environ[name]
        for name in _CA_VARIABLES
        if os.environ.get(name, "").startswith(("/etc/", "/usr/"))
    }


@functools.cache
def _node_env() -> dict[str, str]:
    """Node reserves a 10 GiB address range for WebAssembly, which the jail's address-space
    rlimit refuses: `require('playwright')` (its undici) then dies with "Out of memory:
    Cannot allocate Wasm memory". Node 20.15+ can do without that reservation; older ones
    refuse the flag, so it is only set where the host's node accepts it."""
    node = shutil.which("node")
    if not node:
        return {}
    flag = "--disable-wasm-trap-handler"
    try:
        ok = subprocess.run(
            [node, "-e", "0"],
            env={"PATH": os.environ.get("PATH", ""), "NODE_OPTIONS": flag},
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return {"NODE_OPTIONS": flag} if ok.returncode == 0 else {}


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _read_all(fd: int, *, timeout: float) -> bytes:
    """Read until EOF (bwrap closes --info-fd once the jail is set up, or on failure)."""
    deadline = time.monotonic() + timeout
    chunks = []
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if not sel.select(left):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def _collect(proc: subprocess.Popen, *, timeout: float, cap: int):
    """Read stdout and stderr until both close or `timeout`; keep at most cap+1 bytes each
    (the extra byte tells _decode that something was cut) but keep draining so the command
    never blocks on a full pipe. Returns (out, err, timed_out).

    In a jail the pipes close when the command ends (its pid namespace dies with it). Without
    one, a background child may hold them open: once the command itself has exited we only
    wait EXIT_GRACE for the rest of its output."""
    bufs = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    deadline = time.monotonic() + timeout
    exited = False
    with selectors.DefaultSelector() as sel:
        for stream in bufs:
            if stream is not None and not stream.closed:
                sel.register(stream, selectors.EVENT_READ)
        while sel.get_map():
            if not exited and proc.poll() is not None:
                exited = True
                deadline = min(deadline, time.monotonic() + EXIT_GRACE)
            left = deadline - time.monotonic()
            if left <= 0:
                return bytes(bufs[proc.stdout]), bytes(bufs[proc.stderr]), not exited
            for key, _ in sel.select(min(left, 0.1)):
                try:
                    chunk = os.read(key.fd, 65536)
                except OSError as exc:
                    if exc.errno != errno.EINTR:
                        raise
                    continue
                if not chunk:
                    sel.unregister(key.fileobj)
                    key.fileobj.close()
                    continue
                buf = bufs[key.fileobj]
                if len(buf) <= cap:
                    buf += chunk[: cap + 1 - len(buf)]
    return bytes(bufs[proc.stdout]), bytes(bufs[proc.stderr]), False


def _decode(data: bytes, cap: int) -> str:
    if len(data) > cap:
        return (
            data[:cap].decode("utf-8", errors="replace") + f"\n… [output truncated at {cap} bytes]"
        )
    return data.decode("utf-8", errors="replace")
