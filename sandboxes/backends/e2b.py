"""Sandboxes as E2B microVMs, through the `e2b` SDK (sync API).

The sandbox boots from a template whose start command already runs
`agent_runtime serve --port 8080` with `RUNTIME_TOKEN_FILE` set. A snapshot-booted process
cannot see per-sandbox environment variables, so right after create the backend writes the
sandbox's runtime token to that file; the runtime refuses requests until it exists. The token
never goes into metadata, which anyone holding the API key can list.

Nothing here reads Django settings: a factory passes the configuration in.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import posixpath
import shlex
import threading
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import httpx
from e2b import (
    AuthenticationException,
    CommandExitException,
    FileNotFoundException,
    FileType,
    NotFoundException,
    RateLimitException,
    Sandbox,
    SandboxException,
    SandboxNotFoundException,
    SandboxNotRunningException,
    SandboxQuery,
    SandboxUnreachableException,
    TimeoutException,
)
from e2b.connection_config import ConnectionConfig
from e2b.sandbox.network import ALL_TRAFFIC

from sandboxes.backends.base import (
    MAX_OUTPUT_BYTES,
    RUNTIME_PORT,
    TIMEOUT_EXIT_CODE,
    WORKSPACE,
    BackendError,
    CreateSpec,
    DirEntry,
    ExecResult,
    FileNotFoundInSandbox,
    PathOutsideWorkspace,
    SandboxBackend,
    SandboxGone,
    SandboxHandle,
    SandboxInfo,
)
from sandboxes.backends.local_net import BLOCKED

logger = logging.getLogger(__name__)

TOKEN_DIR = "/home/user/.agent_runtime"
TOKEN_FILE = f"{TOKEN_DIR}/token"
RUNTIME_LOG = f"{TOKEN_DIR}/runtime.log"  # written by the template's start command
BUILD_HINT = "Build it with `python manage.py build_template` and set E2B_TEMPLATE_ID."
# How long the quick housekeeping commands (token provisioning, realpath) may take.
HOUSEKEEPING_TIMEOUT = 30


class E2BBackend(SandboxBackend):
    name = "e2b"

    def __init__(
        self,
        *,
        api_key: str,
        template_id: str,
        install_id: str,
        domain: str | None = None,
        api_url: str | None = None,
        sandbox_url: str | None = None,
        request_timeout: float = 30.0,
        sandbox_scheme: str = "https",
        host_resolver: Callable[[str], str] | None = None,
        max_output_bytes: int = MAX_OUTPUT_BYTES,
        studio_urls: Callable[[], tuple[str, ...]] = tuple,
    ):
        """`sandbox_scheme` and `host_resolver` exist for the local double (tests): in
        production a sandbox port is `https://{port}-{id}.{domain}`, which needs wildcard DNS;
        the double maps that host name to the loopback port it publishes the port on."""
        self.api_key = api_key or ""
        self.template_id = template_id
        self.install_id = install_id
        self.domain = domain
        self.sandbox_scheme = sandbox_scheme
        self.host_resolver = host_resolver
        self.max_output_bytes = max_output_bytes
        self.studio_urls = studio_urls  # reachable under every network policy
        # Debug mode is pinned off: E2B_DEBUG in the environment would make the SDK skip the
        # control plane. Options left as None fall back to the SDK defaults (e2b.app).
        self._opts = {
            "api_key": self.api_key,
            "domain": domain,
            "api_url": api_url,
            "sandbox_url": sandbox_url,
            "request_timeout": request_timeout,
            "debug": False,
        }
        self._opts = {k: v for k, v in self._opts.items() if v is not None}
        self._sandboxes: dict[str, Sandbox] = {}
        self._lock = threading.Lock()

    # --- lifecycle -------------------------------------------------------------------

    def create(self, spec: CreateSpec) -> SandboxHandle:
        """Boot the template tagged with this install, the agent and our sandbox row, then
        provision the runtime token. A sandbox whose token could not be written is killed."""
        template = spec.template or self.template_id
        if not template:
            raise BackendError(f"No E2B template is configured. {BUILD_HINT}", code="E2BConfig")
        metadata = {
            "install_id": self.install_id,
            "agent_id": spec.agent_id,
            "sandbox_id": spec.sandbox_id,
        }
        with self._errors("create a sandbox", template=template):
            sbx = Sandbox.create(
                template=template,
                timeout=spec.timeout_seconds,
                metadata=metadata,
                envs=dict(spec.env),
                **network_options(spec, self.studio_urls()),
                **self._opts,
            )
        self._remember(sbx)
        try:
            self._provision_token(sbx, spec.runtime_token)
        except BaseException:
            with contextlib.suppress(BackendError):
                self.kill(sbx.sandbox_id)
            raise
        logger.info("e2b sandbox created external_id=%s template=%s", sbx.sandbox_id, template)
        return SandboxHandle(sbx.sandbox_id, self.url_for(sbx.sandbox_id, RUNTIME_PORT))

    def _provision_token(self, sbx: Sandbox, token: str) -> None:
        # Written beside the target, locked down, then renamed: the runtime never sees a
        # partial or world-readable token file.
        tmp = f"{TOKEN_FILE}.tmp"
        with self._errors("provision the runtime token", external_id=sbx.sandbox_id):
            sbx.files.write(tmp, token.encode())
            sbx.commands.run(
                f"chmod 700 {TOKEN_DIR} && chmod 600 {tmp} && mv -f {tmp} {TOKEN_FILE}",
                timeout=HOUSEKEEPING_TIMEOUT,
            )

    def connect(self, external_id: str) -> SandboxHandle:
        """Reattach (and resume, if paused) through the control plane."""
        with self._lock:
            self._sandboxes.pop(external_id, None)
        self._sandbox(external_id)
        return SandboxHandle(external_id, self.url_for(external_id, RUNTIME_PORT))

    def set_timeout(self, external_id: str, seconds: int) -> None:
        """Kill the sandbox `seconds` from now unless extended again."""
        with self._errors("set the sandbox timeout", external_id=external_id):
            Sandbox.set_timeout(external_id, int(seconds), **self._opts)

    def kill(self, external_id: str) -> None:
        """Destroy the sandbox; one that is already gone is fine."""
        with self._lock:
            self._sandboxes.pop(external_id, None)
        with self._errors("kill the sandbox", external_id=external_id):
            Sandbox.kill(external_id, **self._opts)

    def list(self) -> list[SandboxInfo]:
        """Running and paused sandboxes tagged with this install's id."""
        query = SandboxQuery(metadata={"install_id": self.install_id})
        found: list[SandboxInfo] = []
        with self._errors("list sandboxes"):
            paginator = Sandbox.list(query=query, **self._opts)
            while paginator.has_next:
                for info in paginator.next_items():
                    found.append(
                        SandboxInfo(
                            external_id=info.sandbox_id,
                            sandbox_id=info.metadata.get("sandbox_id", ""),
                            agent_id=info.metadata.get("agent_id", ""),
                        )
                    )
        return found

    def url_for(self, external_id: str, port: int) -> str:
        """`https://{port}-{id}.{domain}`, built by the SDK's own `get_host`."""
        with self._lock:
            sbx = self._sandboxes.get(external_id)
        if sbx is not None:
            host = sbx.get_host(port)
        else:
            config = ConnectionConfig(**self._opts)
            host = config.get_host(external_id, config.domain, port)
        if self.host_resolver is not None:
            host = self.host_resolver(host)
        return f"{self.sandbox_scheme}://{host}"

    # --- commands and files ----------------------------------------------------------

    def exec(
        self,
        external_id: str,
        command: str,
        *,
        timeout: float,
        cwd: str = WORKSPACE,
        env: dict[str, str] | None = None,
    ) -> ExecResult:
        """Run with `bash -l -c`. A non-zero exit is a normal result; a command still
        running at `timeout` is killed (envd would leave it running) and reported with
        exit code 124. Output beyond max_output_bytes per stream is dropped."""
        sbx = self._sandbox(external_id)
        out, err = _Capped(self.max_output_bytes), _Capped(self.max_output_bytes)
        with self._errors("run a command", external_id=external_id):
            handle = sbx.commands.run(
                command,
                background=True,
                envs=env or {},
                cwd=cwd,
                timeout=timeout,
                retain_output=False,
            )
            try:
                code = handle.wait(on_stdout=out.add, on_stderr=err.add).exit_code
            except CommandExitException as exc:
                code = exc.exit_code
            except (SandboxNotRunningException, SandboxUnreachableException):
                raise
            except TimeoutException:
                with contextlib.suppress(SandboxException):
                    handle.kill()
                return ExecResult(out.text(), err.text(), TIMEOUT_EXIT_CODE, timed_out=True)
        return ExecResult(out.text(), err.text(), code)

    def write_file(self, external_id: str, path: str, content: bytes) -> None:
        """Write as the sandbox user; envd creates the parent directories."""
        sbx = self._sandbox(external_id)
        self._check_inside(sbx, path)
        with self._errors("write a file", external_id=external_id):
            sbx.files.write(path, bytes(content))

    def read_file(self, external_id: str, path: str) -> bytes:
        """The whole file; FileNotFoundInSandbox if it is missing or a directory."""
        sbx = self._sandbox(external_id)
        self._check_inside(sbx, path)
        with self._errors("read a file", external_id=external_id, path=path):
            return bytes(sbx.files.read(path, format="bytes"))

    def list_dir(self, external_id: str, path: str) -> list[DirEntry] | None:
        """One level of a directory, or None for a file."""
        sbx = self._sandbox(external_id)
        self._check_inside(sbx, path)
        with self._errors("list a directory", external_id=external_id, path=path):
            if sbx.files.get_info(path).type != FileType.DIR:
                return None
            entries = sbx.files.list(path, depth=1)
        return [
            DirEntry(
                name=e.name,
                path=posixpath.join(path, e.name),
                is_dir=e.type == FileType.DIR,
                size=e.size,
            )
            for e in entries
        ]

    def runtime_log(self, external_id: str, *, max_bytes: int = 4000) -> str:
        """The tail of the log the template's start command writes (RUNTIME_LOG)."""
        try:
            result = self.exec(
                external_id,
                f"tail -c {int(max_bytes)} {RUNTIME_LOG} 2>/dev/null",
                timeout=HOUSEKEEPING_TIMEOUT,
            )
        except BackendError:
            return ""
        return result.stdout

    def _check_inside(self, sbx: Sandbox, path: str) -> None:
        """Resolve symlinks inside the sandbox: only it knows where a link points."""
        with self._errors("check a path", external_id=sbx.sandbox_id):
            result = sbx.commands.run(
                f"realpath -m -z -- {shlex.quote(path)}", timeout=HOUSEKEEPING_TIMEOUT
            )
        real = result.stdout.removesuffix("\0")
        if real != WORKSPACE and not real.startswith(WORKSPACE + "/"):
            raise PathOutsideWorkspace(path)

    # --- plumbing --------------------------------------------------------------------

    def _remember(self, sbx: Sandbox) -> None:
        with self._lock:
            self._sandboxes[sbx.sandbox_id] = sbx

    def _sandbox(self, external_id: str) -> Sandbox:
        """The SDK object for a sandbox, connecting once per process (connect also
        resumes a paused sandbox and hands us its envd access token)."""
        with self._lock:
            sbx = self._sandboxes.get(external_id)
        if sbx is None:
            with self._errors("connect to the sandbox", external_id=external_id):
                sbx = Sandbox.connect(external_id, **self._opts)
            self._remember(sbx)
        return sbx

    def _scrub(self, text: str) -> str:
        return text.replace(self.api_key, "***") if self.api_key else text

    @contextlib.contextmanager
    def _errors(
        self, action: str, *, external_id: str = "", template: str = "", path: str = ""
    ) -> Iterator[None]:
        """Turn provider failures into BackendErrors a user can act on."""
        if not self.api_key:
            raise BackendError(
                "E2B_API_KEY is not set. Create a key at https://e2b.dev/dashboard and set "
                "E2B_API_KEY, or use the local sandbox backend.",
                code="E2BConfig",
            )
        try:
            yield
        except BackendError:
            raise
        except AuthenticationException as exc:
            logger.warning("e2b auth failed action=%r", action)
            raise BackendError(
                "E2B rejected the API key (unauthorized). Check E2B_API_KEY.",
                code="E2BAuthFailed",
            ) from exc
        except FileNotFoundException as exc:
            raise FileNotFoundInSandbox(path) from exc
        except (SandboxNotFoundException, SandboxNotRunningException) as exc:
            self._forget(external_id)
            raise SandboxGone(f"The E2B sandbox {external_id} no longer exists.") from exc
        except RateLimitException as exc:
            raise BackendError(
                f"E2B is rate limiting requests; could not {action}. Try again shortly.",
                code="E2BRateLimited",
            ) from exc
        except SandboxException as exc:
            status = getattr(exc, "status_code", None)
            message = self._scrub(str(exc))
            if template and status in (400, 404) and "template" in message.lower():
                raise BackendError(
                    f"E2B template {template!r} was not found. {BUILD_HINT}",
                    code="E2BTemplateNotFound",
                ) from exc
            if (external_id and status == 404) or isinstance(exc, NotFoundException):
                self._forget(external_id)
                raise SandboxGone(f"The E2B sandbox {external_id} no longer exists.") from exc
            logger.warning("e2b call failed action=%r error=%s", action, message)
            raise BackendError(f"E2B could not {action}: {message}") from exc
        except (httpx.HTTPError, OSError) as exc:
            logger.warning("e2b unreachable action=%r error=%s", action, type(exc).__name__)
            raise BackendError(
                f"Could not reach E2B to {action} ({type(exc).__name__}). "
                "Check the network and E2B status.",
                code="E2BUnreachable",
            ) from exc

    def _forget(self, external_id: str) -> None:
        with self._lock:
            self._sandboxes.pop(external_id, None)


class _Capped:
    """Collects streamed output up to a byte limit."""

    def __init__(self, limit: int):
        self.limit = limit
        self.size = 0
        self.parts: list[str] = []

    def add(self, chunk: str) -> None:
        room = self.limit - self.size
        if room > 0:
            data = chunk.encode()[:room]
            self.parts.append(data.decode(errors="ignore"))
            self.size += len(data)

    def text(self) -> str:
        return "".join(self.parts)


def network_options(spec: CreateSpec, studio_urls) -> dict:
    """The agent's network policy as E2B's own egress controls (`Sandbox.create(network=)`,
    enforced by E2B outside the VM). `open`: the public internet, minus the IPv4 ranges a
    local sandbox never reaches; `allowlist`: the listed domains (E2B matches `*.domain`
    like we do) and the studio's hosts, everything else denied; `none`: the studio's hosts
    only. What E2B cannot express is in docs/security.md (IPv6 ranges, deny by domain)."""
    studio_hosts = [h for h in (urlsplit(u).hostname for u in studio_urls) if h]
    if spec.network_policy == "open":
        v4 = [n for n in BLOCKED if ipaddress.ip_network(n).version == 4]
        return {"network": {"deny_out": v4}}
    allowed = list(spec.network_allowlist) if spec.network_policy == "allowlist" else []
    allowed = list(dict.fromkeys([*allowed, *studio_hosts]))
    if not allowed:
        return {"allow_internet_access": False}
    return {"network": {"allow_out": allowed, "deny_out": [ALL_TRAFFIC]}}
