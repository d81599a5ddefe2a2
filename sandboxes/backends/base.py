"""The one interface every sandbox provider implements.

A backend knows how to start an isolated machine with `agent_runtime` serving on port 8080
inside it, and how to act on that machine afterwards. It knows nothing about Django models:
it takes and returns plain values, so the services decide what a row means and the backend
only talks to the provider. The rest of the code never imports a provider SDK directly.

Paths given to a backend are absolute paths inside the sandbox that have already been
confined to `/workspace` by `sandboxes.paths.confine`; a backend re-checks what only it can
see (symlinks resolved inside the sandbox) and raises `PathOutsideWorkspace`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

WORKSPACE = "/workspace"
RUNTIME_PORT = 8080
TIMEOUT_EXIT_CODE = 124  # what coreutils `timeout` reports; every backend reports it alike
MAX_OUTPUT_BYTES = 1 << 20  # per stream of one exec, unless a backend is told otherwise


class BackendError(Exception):
    """A provider failed. `message` is safe to show a user; it never holds a secret."""

    def __init__(self, message: str, *, code: str = "SandboxBackendError"):
        super().__init__(message)
        self.message = message
        self.code = code


class SandboxGone(BackendError):
    """The sandbox no longer exists at the provider (killed, expired, never was)."""

    def __init__(self, message: str = "The sandbox no longer exists."):
        super().__init__(message, code="SandboxGone")


class PathOutsideWorkspace(BackendError):
    """A path resolved (after symlinks) outside /workspace."""

    def __init__(self, path: str):
        super().__init__(f"Path {path!r} resolves outside /workspace.", code="PathOutsideWorkspace")


class PathNotUsable(BackendError):
    """The path is inside /workspace but cannot be used that way: a directory where a file
    is wanted (or the reverse), a FIFO or device, a symlink loop. The caller's mistake."""


class FileNotFoundInSandbox(BackendError):
    def __init__(self, path: str):
        super().__init__(f"No such file or directory: {path}", code="FileNotFound")


@dataclass(frozen=True)
class CreateSpec:
    """What a new sandbox needs. `env` is set for every process in the sandbox."""

    sandbox_id: str
    agent_id: str
    runtime_token: str
    template: str = ""
    timeout_seconds: int = 1800
    env: dict[str, str] = field(default_factory=dict)
    # Egress: "open" (public internet only), "allowlist" (these domains only) or "none"
    # (nothing but the studio). Backends that cannot enforce a policy say so in their docs.
    network_policy: str = "open"
    network_allowlist: tuple[str, ...] = ()


@dataclass(frozen=True)
class SandboxHandle:
    """A running sandbox as the provider knows it."""

    external_id: str
    runtime_url: str  # base URL of agent_runtime, e.g. http://127.0.0.1:41234


@dataclass(frozen=True)
class ExecResult:
    stdout: str
    stderr: str
    exit_code: int
    timed_out: bool = False


@dataclass(frozen=True)
class DirEntry:
    name: str
    path: str
    is_dir: bool
    size: int


@dataclass(frozen=True)
class SandboxInfo:
    """One sandbox found at the provider, for reconciliation."""

    external_id: str
    sandbox_id: str  # our Sandbox row's id, from the provider's metadata ("" if unknown)
    agent_id: str


class SandboxBackend(abc.ABC):
    name: str = ""

    @abc.abstractmethod
    def create(self, spec: CreateSpec) -> SandboxHandle:
        """Start a sandbox with agent_runtime serving on port 8080 and return its handle.

        Returns once the provider says the machine exists; the caller waits for /health.
        """

    @abc.abstractmethod
    def connect(self, external_id: str) -> SandboxHandle:
        """Reattach to a sandbox started earlier (possibly by another process). SandboxGone
        if it no longer exists."""

    @abc.abstractmethod
    def exec(
        self,
        external_id: str,
        command: str,
        *,
        timeout: float,
        cwd: str = WORKSPACE,
        env: dict[str, str] | None = None,
    ) -> ExecResult:
        """Run `command` with bash inside the sandbox as the sandbox user. A command still
        running after `timeout` seconds is killed and reported with timed_out=True."""

    @abc.abstractmethod
    def write_file(self, external_id: str, path: str, content: bytes) -> None:
        """Write a file (creating parent directories), owned by the sandbox user."""

    @abc.abstractmethod
    def read_file(self, external_id: str, path: str) -> bytes:
        """Read a whole file. FileNotFoundInSandbox if it does not exist."""

    @abc.abstractmethod
    def list_dir(self, external_id: str, path: str) -> list[DirEntry] | None:
        """List a directory, or None if `path` is a file. FileNotFoundInSandbox if missing."""

    @abc.abstractmethod
    def url_for(self, external_id: str, port: int) -> str:
        """Base URL (scheme://host[:port]) at which the studio reaches `port` in the sandbox."""

    @abc.abstractmethod
    def set_timeout(self, external_id: str, seconds: int) -> None:
        """Ask the provider to kill the sandbox `seconds` from now unless extended again."""

    @abc.abstractmethod
    def kill(self, external_id: str) -> None:
        """Destroy the sandbox and everything in it. Killing a gone sandbox is not an error."""

    @abc.abstractmethod
    def list(self) -> list[SandboxInfo]:
        """Every sandbox this studio install has at the provider, alive now."""

    def runtime_log(self, external_id: str, *, max_bytes: int = 4000) -> str:
        """The end of the runtime's own output (its start command's stdout and stderr), for
        diagnosing a runtime that never answered; "" when the backend keeps none. Operators
        read it in the studio's log: it may name host paths, so it is not shown to users."""
        return ""

    def limits_hit(self, external_id: str) -> list[str]:
        """Which of the sandbox's resource limits it has run into ("pids", "memory",
        "disk"), as far as the provider can tell; readable until kill. [] if none or
        unknown."""
        return []
