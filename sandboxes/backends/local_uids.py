"""Host uids for local sandboxes: one each, unique on the whole host.

A uid is the sandbox's identity: its files, its process limit, and how `kill` finds every
process it has. So two sandboxes must never share one, not even two studio installs (or
test runs) on one host with the same SANDBOX_UID_RANGE. A claim is a file named after the
uid in CLAIMS (/run is a tmpfs: claims end with the boot, as the processes do), created
with O_EXCL so that exactly one claimant wins, holding the path of the sandbox's state file.
A claim whose state file is gone and whose uid runs no process is stale (its install was
deleted without killing its sandboxes) and is taken over.
"""

from __future__ import annotations

import contextlib
import os

from sandboxes.backends.base import BackendError
from sandboxes.backends.local_jail import uids_in_use

CLAIMS = "/run/agent-studio/uids"


def claim(first: int, last: int, *, state_path: str) -> int:
    """Claim the lowest free uid of first..last for the sandbox whose state is at
    `state_path`."""
    os.makedirs(CLAIMS, mode=0o700, exist_ok=True)
    running = uids_in_use(first, last)
    for uid in range(first, last + 1):
        if uid in running:
            continue
        path = os.path.join(CLAIMS, str(uid))
        for _ in range(2):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            except FileExistsError:
                if not _stale(path):
                    break
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(state_path)
            return uid
    raise BackendError(
        f"Every sandbox uid in {first}-{last} is in use (SANDBOX_UID_RANGE).",
        code="SandboxCapacity",
    )


def release(uid: int, *, state_path: str) -> None:
    """Give the uid back (only if this sandbox holds it)."""
    path = os.path.join(CLAIMS, str(uid))
    with contextlib.suppress(FileNotFoundError):
        with open(path) as f:
            if f.read() != state_path:
                return
        os.unlink(path)


def _stale(path: str) -> bool:
    try:
        with open(path) as f:
            owner = f.read()
    except FileNotFoundError:
        return True
    uid = int(os.path.basename(path))
    return bool(owner) and not os.path.exists(owner) and not uids_in_use(uid, uid)
