"""Keys for embedded mode, generated on first start and kept in a git-ignored file."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

KEYS = ("SECRET_KEY", "INTERNAL_API_KEY", "STUDIO_INSTALL_ID")


def load_or_create_local_keys(path: Path) -> dict[str, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    keys: dict[str, str] = {}
    if path.exists():
        keys = json.loads(path.read_text())
    missing = [k for k in KEYS if not keys.get(k)]
    if missing:
        for name in missing:
            keys[name] = (
                secrets.token_hex(8) if name == "STUDIO_INSTALL_ID" else secrets.token_urlsafe(48)
            )
        # Write-then-rename so two processes starting at once never read half a file.
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(keys, fh, indent=2)
        if path.exists():  # another process won the race: use its keys
            tmp.unlink()
            return json.loads(path.read_text())
        os.replace(tmp, path)
    return keys


def install_id_from(secret: str) -> str:
    """A stable, non-secret install id derived from one of the install's own secrets."""
    return hmac.new(secret.encode(), b"agent-studio install id", hashlib.sha256).hexdigest()[:16]
