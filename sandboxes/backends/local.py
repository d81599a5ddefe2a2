"""Local sandboxes: bubblewrap jails on the studio's own machine.

Layout under `data_dir` (mode 0700: the sandbox user maps to the studio's uid on the host, so
a setuid file it makes in its workspace would be a setuid-root file; nobody else may reach it):

    sandboxes/<sandbox_id>/state.json   external_id, pids, port, agent, created, deadline
    sandboxes/<sandbox_id>/workspace/   bound at /workspace
    sandboxes/<sandbox_id>/home/        bound at /home/agent (HOME; keeps Claude transcripts)
    sandboxes/<sandbox_id>/runtime.log  the runtime's stdout and stderr (outside the jail)
    local-jail/                         passwd, group and an empty dir that every jail binds

The external id is the sandbox id. A jail is started in its own session and without
--die-with-parent, so it survives a studio restart; state.json lets any process find it
again, and the pid is trusted only while its start time and argv still match (pid reuse).

`exec` starts a fresh bwrap with the same binds instead of entering the running jail with
nsenter: a process that joins the jail's user namespace holds every capability in it and
would have to drop them all correctly before running user code (otherwise it could remount
the read-only binds), while a fresh bwrap is the same audited setup as the runtime, costs a
few milliseconds, and dies whole when its command ends. The price: background processes an
exec leaves behind are killed when the command returns, and /tmp is not shared with the
runtime (the workspace and HOME are).

Timeouts: `set_timeout` records a deadline; the studio's reaper enforces it, and this backend
also kills an overdue sandbox whenever it looks at it (connect, list, exec, files).

`kill` deletes the sandbox's directory, workspace and HOME included: a stopped sandbox is gone
at every provider, and E2B's are too.
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

from sandboxes.backends import local_jail
from sandboxes.backends.base import (
    MAX_OUTPUT_BYTES,
    RUNTIME_PORT,
    TIMEOUT_EXIT_CODE,
    WORKSPACE,
    BackendError,
    CreateSpec,
    DirEntry,
    ExecResult,
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
    ):
        """`runtime_command` is argv with `{python}`, `{port}` and `{workspace}` filled in;
        by default `{python} -m agent_runtime serve --host 127.0.0.1 --port {port}
        --workspace {workspace}` (the jail shares the host's network: loopback only).
        `rlimits` overrides the defaults in local_jail.RLIMITS by name; None lifts one."""
        if isolation not in ISOLATIONS:
            raise ValueError(f"isolation must be one of {ISOLATIONS}, not {isolation!r}")
        self.data_dir = Path(data_dir).resolve()
        self.isolation = isolation
        # Absolute and normalized (not resolved: a venv's python is a symlink that must stay
        # inside the venv for its site-packages to count).
        self.python = os.path.abspath(python)
        self.runtime_command = runtime_command or [
            *("{python}", "-m", "agent_runtime", "serve", "--host", "127.0.0.1"),
            *("--port", "{port}", "--workspace", "{workspace}"),
        ]
        self.runtime_dir = str(Path(runtime_dir).resolve())
        self.rlimits = {**local_jail.DEFAULT_RLIMITS, **(rlimits or {})}
        local_jail.check_rlimits(self.rlimits)
        self.tmpfs_bytes = tmpfs_bytes
        self.max_output_bytes = max_output_bytes
        self.max_read_bytes = max_read_bytes
        self.host = host
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
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, path)

    def _alive(self, state: dict) -> bool:
        pid = state["pid"]
        if local_jail.proc_start_time(pid) != state["pid_start"]:
            return False  # exited, a zombie, or the pid now belongs to someone else
        return local_jail.proc_environ(pid).get(MARKER) == state["external_id"]

    @contextlib.contextmanager
    def _lock(self):
        """Serialises create and kill across processes (the reaper, web, workers)."""
        root = self.data_dir / "sandboxes"
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        with open(root / ".lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _workspace(self, external_id: str) -> Workspace:
        self._load(external_id)
        return Workspace(str(self._sandbox_dir(external_id) / "workspace"))

    # --- the jail ----------------------------------------------------------------------

    def _layout(self, sandbox_dir: Path) -> local_jail.JailLayout:
        return local_jail.JailLayout(
            workspace=str(sandbox_dir / "workspace"),
            home=str(sandbox_dir / "home"),
            jail_dir=str(self.data_dir / "local-jail"),
            runtime_dir=self.runtime_dir,
            python_dirs=self._python_bind_dirs(),
            tmpfs_bytes=self.tmpfs_bytes,
        )

    def _python_bind_dirs(self) -> tuple[str, ...]:
        """The interpreter's prefix and base prefix (a venv and the Python it was made from),
        minus what /usr already shows."""
        if self._python_dirs is None:
            if self.python == sys.executable:
                prefixes = [sys.prefix, sys.base_prefix]
            else:
                out = subprocess.run(
                    [self.python, "-c", "import sys; print(sys.prefix); print(sys.base_prefix)"],
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=30,
                ).stdout
                prefixes = out.split()
            dirs = []
            for prefix in prefixes:
                real = os.path.realpath(prefix)
                if real != "/usr" and not real.startswith("/usr/") and real not in dirs:
                    dirs.append(real)
            self._python_dirs = tuple(dirs)
        return self._python_dirs

    def _base_env(self, *, home: str, pythonpath: str, marker: str) -> dict[str, str]:
        venv_bin = os.path.join(os.path.realpath(sys.prefix), "bin")
        path = local_jail.SANDBOX_PATH
        if self.python == os.path.abspath(sys.executable) and sys.prefix != sys.base_prefix:
            path = f"{venv_bin}:{path}"
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
            "PYTHONPATH": f"{pythonpath}:{packages}",
            "PIP_TARGET": packages,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PYTHONUNBUFFERED": "1",
            MARKER: marker,
        }

    def _spawn(self, argv_for, *, env: dict[str, str], cwd: str, stdout, stderr):
        """Start `argv_for(info_fd)` in a new session and return (Popen, pid whose death ends
        everything): with bwrap, the jail's init (from --info-fd; SIGKILL on it takes the
        whole pid namespace down), else the process itself."""
        prefix = local_jail.rlimit_prefix(self.rlimits)
        if self.isolation == "none":
            proc = subprocess.Popen(
                [*prefix, *argv_for(None)],
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
            return proc, proc.pid
        read_fd, write_fd = os.pipe()
        try:
            proc = subprocess.Popen(
                [*prefix, *argv_for(write_fd)],
                env=env,
                cwd="/",
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                pass_fds=(write_fd,),
                start_new_session=True,
            )
        finally:
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
        if self.isolation == "bwrap" and not shutil.which("bwrap"):
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
        sandbox_dir = self._sandbox_dir(spec.sandbox_id)
        with self._lock():
            if (sandbox_dir / "state.json").exists():
                raise BackendError(f"Local sandbox {spec.sandbox_id} already exists.")
            local_jail.write_identity_files(str(self.data_dir / "local-jail"))
            for sub in ("workspace", "home"):
                (sandbox_dir / sub).mkdir(parents=True, exist_ok=True)
                os.chmod(sandbox_dir / sub, 0o755)  # noqa: S103 - under a 0700 dir
            os.chmod(sandbox_dir, 0o700)
            port = _free_port(self.host)
            layout = self._layout(sandbox_dir)
            isolated = self.isolation == "bwrap"
            env = self._base_env(
                home=local_jail.HOME if isolated else layout.home,
                pythonpath=(
                    local_jail.RUNTIME_MOUNT if isolated else os.path.dirname(self.runtime_dir)
                ),
                marker=spec.sandbox_id,
            )
            _write_profile(Path(layout.home), path=env["PATH"])
            workspace = WORKSPACE if isolated else layout.workspace
            env.update(spec.env)
            env["RUNTIME_TOKEN"] = spec.runtime_token
            command = [
                part.format(python=self.python, port=port, workspace=workspace)
                for part in self.runtime_command
            ]

            def argv_for(info_fd):
                if info_fd is None:
                    return command
                return [*layout.argv(chdir=WORKSPACE, info_fd=info_fd), *command]

            log_path = sandbox_dir / "runtime.log"
            with open(log_path, "ab") as out:
                try:
                    proc, child_pid = self._spawn(
                        argv_for,
                        env=env,
                        cwd=layout.workspace,
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
            with _children_lock:
                _children[proc.pid] = proc
            now = time.time()
            state = {
                "external_id": spec.sandbox_id,
                "sandbox_id": spec.sandbox_id,
                "agent_id": spec.agent_id,
                "isolation": self.isolation,
                "pid": proc.pid,
                "pid_start": local_jail.proc_start_time(proc.pid),
                "child_pid": child_pid,
                "port": port,
                "workspace": layout.workspace,
                "created": now,
                "deadline": now + spec.timeout_seconds if spec.timeout_seconds else None,
            }
            self._save(state)
        log.info(
            "local sandbox started external_id=%s pid=%s port=%s isolation=%s",
            spec.sandbox_id,
            proc.pid,
            port,
            self.isolation,
        )
        return SandboxHandle(external_id=spec.sandbox_id, runtime_url=f"http://{self.host}:{port}")

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
        stream is dropped and marked; on timeout the jail is killed whole (exit code 124)."""
        state = self._load(external_id)
        sandbox_dir = self._sandbox_dir(external_id)
        layout = self._layout(sandbox_dir)
        ws = Workspace(layout.workspace)
        inner_cwd = ws.check_dir(cwd)
        # The sandbox's own environment (its secrets included) is read back from the jail's
        # first process rather than stored on disk.
        merged = self._base_env(
            home=local_jail.HOME if self.isolation == "bwrap" else layout.home,
            pythonpath="",
            marker=external_id,
        )
        merged.update(local_jail.proc_environ(state["pid"]))
        merged.pop("RUNTIME_TOKEN", None)  # only the runtime needs it
        merged.update(env or {})
        merged[MARKER] = external_id
        bash = ["bash", "-lc", command]

        def argv_for(info_fd):
            if info_fd is None:
                return bash
            return [*layout.argv(chdir=inner_cwd, info_fd=info_fd), *bash]

        host_cwd = layout.workspace + inner_cwd[len(WORKSPACE) :]
        proc, child_pid = self._spawn(
            argv_for, env=merged, cwd=host_cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        out, err, timed_out = _collect(proc, timeout=timeout, cap=self.max_output_bytes)
        if timed_out:
            for pid in (child_pid, proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            # Drain what the killed processes had written, still capped.
            more_out, more_err, _ = _collect(proc, timeout=5.0, cap=self.max_output_bytes)
            out, err = out + more_out, err + more_err
        for stream in (proc.stdout, proc.stderr):
            stream.close()
        proc.wait()
        code = TIMEOUT_EXIT_CODE if timed_out else proc.returncode
        return ExecResult(
            stdout=_decode(out, self.max_output_bytes),
            stderr=_decode(err, self.max_output_bytes),
            exit_code=code,
            timed_out=timed_out,
        )

    def write_file(self, external_id: str, path: str, content: bytes) -> None:
        """Write on the host side of the workspace without following any symlink out."""
        self._workspace(external_id).write(path, content)

    def read_file(self, external_id: str, path: str, *, max_bytes: int | None = None) -> bytes:
        """Read a regular file (at most max_bytes, default max_read_bytes: FileTooLarge)."""
        return self._workspace(external_id).read(path, max_bytes=max_bytes or self.max_read_bytes)

    def list_dir(self, external_id: str, path: str) -> list[DirEntry] | None:
        """List a directory of the workspace (symlinks are listed, not followed)."""
        return self._workspace(external_id).list(path)

    def url_for(self, external_id: str, port: int) -> str:
        """The runtime's port 8080 is remapped to the loopback port chosen at create; the
        jail shares the host's network, so any other port is the same port on the host."""
        state = self._load(external_id)
        if port == RUNTIME_PORT:
            port = state["port"]
        return f"http://{self.host}:{port}"

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

    def kill(self, external_id: str) -> None:
        """Kill every process of the sandbox (verified gone) and delete its directory."""
        try:
            sandbox_dir = self._sandbox_dir(external_id)
        except SandboxGone:
            return  # not an id we could have made
        with self._lock():
            state_path = sandbox_dir / "state.json"
            with contextlib.suppress(FileNotFoundError):
                state_path.unlink()  # first, so that nobody starts an exec meanwhile
            workspace = str(sandbox_dir / "workspace")
            survivors = local_jail.kill_until_gone(
                lambda: local_jail.find_processes(
                    arg=workspace, env_marker=f"{MARKER}={external_id}"
                )
            )
            with _children_lock:
                for pid, proc in list(_children.items()):
                    if proc.poll() is not None:
                        del _children[pid]
            if survivors:
                raise BackendError(
                    f"Could not kill every process of local sandbox {external_id}: {survivors}"
                )
            shutil.rmtree(sandbox_dir, ignore_errors=True)
        log.info("local sandbox killed external_id=%s", external_id)

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


def _write_profile(home: Path, *, path: str) -> None:
    """A login shell (exec runs `bash -lc`) reads /etc/profile, which resets PATH for a
    non-root user; ~/.profile puts back the one the runtime has, plus ~/.local/bin."""
    profile = home / ".profile"
    if not profile.exists():
        profile.write_text(
            "# Written by Agent Studio at sandbox creation; yours to change.\n"
            f'PATH="$HOME/.local/bin:{path}"\n'
            'if [ -n "$BASH_VERSION" ] && [ -f "$HOME/.bashrc" ]; then . "$HOME/.bashrc"; fi\n'
        )


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
