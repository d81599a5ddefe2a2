"""Acting on a ready sandbox: files, packages, commands. Each counts as activity.

Everything read back from the sandbox (command output, file contents and names, a provider's
error message) passes through the sandbox's redactor (logs/redaction.py) before it is
returned: the sandbox holds secrets, and its user may try to read them back.
"""

from __future__ import annotations

import base64
import binascii
import re
import shlex
from dataclasses import replace

from logs.redaction import Redactor, redactor_for_sandbox
from sandboxes.backends import get_backend
from sandboxes.backends.base import (
    BackendError,
    ExecResult,
    FileNotFoundInSandbox,
    PathNotUsable,
    PathOutsideWorkspace,
)
from sandboxes.models import Sandbox, SandboxStatus
from sandboxes.paths import InvalidPath, confine
from sandboxes.services.activity import sandbox_touch
from studio.errors import Conflict, NotFound, Unavailable, ValidationFailed

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_FILES_PER_REQUEST = 100
MAX_READ_BYTES = 10 * 1024 * 1024
MAX_EXEC_TIMEOUT_MS = 600_000
DEFAULT_EXEC_TIMEOUT_MS = 60_000
MAX_OUTPUT_CHARS = 200_000
PACKAGE_TIMEOUT_SECONDS = 600

# pip: a PEP 508 name with optional extras and a version specifier; npm: an optionally
# scoped name with an optional @version. Nothing here can carry shell syntax.
_PIP = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}(\[[A-Za-z0-9._,-]+\])?([<>=!~]=?[A-Za-z0-9.*+!-]+(,[<>=!~]=?[A-Za-z0-9.*+!-]+)*)?$"
)
_NPM = re.compile(
    r"^(@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]{0,213}(@[A-Za-z0-9.^~<>=*|+-]+)?$"
)


def _ready(sandbox: Sandbox | None) -> Sandbox:
    if sandbox is None:
        raise NotFound("This agent has no live sandbox. Deploy it first.")
    if sandbox.status != SandboxStatus.READY:
        raise Conflict(f"The sandbox is {sandbox.status}, not ready.", code="SandboxNotReady")
    return sandbox


def _confined(path: str, field: str = "path") -> str:
    try:
        return confine(path)
    except InvalidPath as exc:
        raise ValidationFailed(str(exc), details={field: [str(exc)]}) from None


def _backend_call(fn, *args, redactor: Redactor, **kwargs):
    """Call the backend; its errors become the API's, their messages redacted (a provider's
    message may quote the sandbox's output)."""
    try:
        return fn(*args, **kwargs)
    except PathOutsideWorkspace as exc:
        message = redactor.text(exc.message)
        raise ValidationFailed(message, details={"path": [message]}) from None
    except FileNotFoundInSandbox as exc:
        raise NotFound(redactor.text(exc.message)) from None
    except PathNotUsable as exc:
        message = redactor.text(exc.message)
        raise ValidationFailed(message, code=exc.code, details={"path": [message]}) from None
    except BackendError as exc:
        raise Unavailable(redactor.text(exc.message)) from None


def decode_file(item: dict, index: int) -> tuple[str, bytes]:
    """(confined path, bytes) of one `{"path", "content", "encoding"?}` entry."""
    field = f"files[{index}]"
    path = _confined(item.get("path", ""), f"{field}.path")
    encoding = item.get("encoding") or "utf-8"
    content = item.get("content", "")
    if encoding == "base64":
        try:
            data = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationFailed(
                f"{field}.content is not valid base64.", details={f"{field}.content": ["invalid"]}
            ) from None
    else:
        data = content.encode()
    if len(data) > MAX_FILE_BYTES:
        raise ValidationFailed(
            f"{field} is larger than {MAX_FILE_BYTES} bytes.",
            details={f"{field}.content": ["too large"]},
        )
    return path, data


def files_write(*, sandbox: Sandbox | None, files: list[tuple[str, bytes]]) -> list[str]:
    """Write files into /workspace (parents created). Returns the paths written."""
    sandbox = _ready(sandbox)
    backend = get_backend(sandbox.backend)
    redactor = redactor_for_sandbox(sandbox)
    written = []
    for path, data in files:
        _backend_call(backend.write_file, sandbox.external_id, path, data, redactor=redactor)
        written.append(path)
    sandbox_touch(sandbox)
    return written


def files_read(*, sandbox: Sandbox | None, path: str) -> dict:
    """A directory listing `{"type": "directory", "entries"}` or a file `{"type": "file",
    "content"}` (bytes), redacted: entry names as text, the content byte for byte
    (``Redactor.binary``: a UTF-8 file stays UTF-8, a binary one keeps its other bytes)."""
    sandbox = _ready(sandbox)
    path = _confined(path)
    backend = get_backend(sandbox.backend)
    redactor = redactor_for_sandbox(sandbox)
    entries = _backend_call(backend.list_dir, sandbox.external_id, path, redactor=redactor)
    sandbox_touch(sandbox)
    if entries is not None:
        entries = [
            replace(e, name=redactor.text(e.name), path=redactor.text(e.path)) for e in entries
        ]
        return {"type": "directory", "path": path, "entries": entries}
    data = _backend_call(backend.read_file, sandbox.external_id, path, redactor=redactor)
    if len(data) > MAX_READ_BYTES:
        raise ValidationFailed(
            f"{path} is larger than {MAX_READ_BYTES} bytes.", code="FileTooLarge"
        )
    return {"type": "file", "path": path, "content": redactor.binary(data)}


def command_exec(
    *, sandbox: Sandbox | None, command: str, timeout_ms: int | None, cwd: str | None
) -> ExecResult:
    """Run a shell command in the sandbox with a bounded timeout; the output redacted, then
    truncated if long."""
    sandbox = _ready(sandbox)
    timeout_ms = timeout_ms or DEFAULT_EXEC_TIMEOUT_MS
    if not 1 <= timeout_ms <= MAX_EXEC_TIMEOUT_MS:
        raise ValidationFailed(
            f"timeout must be between 1 and {MAX_EXEC_TIMEOUT_MS} ms.",
            details={"timeout": ["out of range"]},
        )
    workdir = _confined(cwd or "/workspace", "cwd")
    backend = get_backend(sandbox.backend)
    redactor = redactor_for_sandbox(sandbox)
    result = _backend_call(
        backend.exec,
        sandbox.external_id,
        command,
        timeout=timeout_ms / 1000,
        cwd=workdir,
        redactor=redactor,
    )
    sandbox_touch(sandbox)
    return ExecResult(
        stdout=_output(result.stdout, redactor),
        stderr=_output(result.stderr, redactor),
        exit_code=result.exit_code,
        timed_out=result.timed_out,
    )


def packages_install(
    *, sandbox: Sandbox | None, packages: list[str], manager: str = "npm"
) -> ExecResult:
    """npm (the default) or pip install into the sandbox as its user, names validated first.

    npm is the default because the seed guide's runtime is Node (`require('playwright')`):
    its `{"packages": ["playwright", "axios"]}` names npm packages, and the same names on
    PyPI are unrelated projects. npm installs into /workspace/node_modules, where `require`
    from a script in the workspace looks first."""
    pattern = {"pip": _PIP, "npm": _NPM}.get(manager)
    if pattern is None:
        raise ValidationFailed("manager must be pip or npm.", details={"manager": ["invalid"]})
    if not packages or len(packages) > 50:
        raise ValidationFailed("Give 1 to 50 packages.", details={"packages": ["count"]})
    bad = [p for p in packages if not isinstance(p, str) or not pattern.match(p)]
    if bad:
        raise ValidationFailed(
            f"Not a valid {manager} package name: {bad[0]!r}.", details={"packages": bad}
        )
    names = " ".join(shlex.quote(p) for p in packages)
    command = (
        # Where packages land is the sandbox's own setting (PIP_TARGET locally; the E2B
        # image's venv belongs to its user), so the same command works everywhere.
        f"python3 -m pip install --no-input --disable-pip-version-check {names}"
        if manager == "pip"
        else f"npm install --no-audit --no-fund --prefix /workspace {names}"
    )
    return command_exec(
        sandbox=sandbox,
        command=command,
        timeout_ms=PACKAGE_TIMEOUT_SECONDS * 1000,
        cwd="/workspace",
    )


# Redacted a little past the cut, so a secret straddling it is masked before it is split.
_REDACTION_MARGIN = 4096


def _output(text: str, redactor: Redactor) -> str:
    """Command output redacted, then cut to MAX_OUTPUT_CHARS with a note of what was left."""
    if len(text) <= MAX_OUTPUT_CHARS:
        return redactor.text(text)
    head = redactor.text(text[: MAX_OUTPUT_CHARS + _REDACTION_MARGIN])[:MAX_OUTPUT_CHARS]
    dropped = len(text) - MAX_OUTPUT_CHARS
    return head + f"\n… [output truncated: {dropped} more characters]"
