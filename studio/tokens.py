"""The one place that mints and checks the tokens sandboxes carry.

Both are derived from INTERNAL_API_KEY, so nothing has to be stored, and the key itself
never enters a sandbox.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings


def _hmac(message: str) -> str:
    return hmac.new(
        settings.INTERNAL_API_KEY.encode(), message.encode(), hashlib.sha256
    ).hexdigest()


def session_token(session_id) -> str:
    """Bearer token with which a sandbox appends log lines for one session (docs/protocol.md)."""
    return _hmac(str(session_id))


def session_token_matches(session_id, token: str) -> bool:
    return hmac.compare_digest(session_token(session_id), token)


def runtime_token(sandbox_id) -> str:
    """Bearer token the studio presents to agent_runtime in one sandbox."""
    return _hmac(f"runtime:{sandbox_id}")
