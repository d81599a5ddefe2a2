"""The one place that mints and checks the tokens sandboxes carry.

All are derived from INTERNAL_API_KEY, so nothing has to be stored, and the key itself
never enters a sandbox.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid

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


# The model gateway's credential (docs/gateway.md): the CLI in a sandbox sends it as its API
# key. It names its session, so the gateway can find the session without a table, and its
# HMAC has a purpose of its own, so it is worth nothing as an ingest or runtime token.
MODEL_TOKEN_PREFIX = "studio-model-"
_MODEL_TOKEN = re.compile(r"^studio-model-([0-9a-f]{32})-([0-9a-f]{64})$")


def model_token(session_id) -> str:
    """The credential one session's runs present to the model gateway."""
    session_id = uuid.UUID(str(session_id))
    return f"{MODEL_TOKEN_PREFIX}{session_id.hex}-{_hmac(f'model:{session_id}')}"


def model_token_session(token: str) -> uuid.UUID | None:
    """The session a model credential was minted for, or None if it is not one of ours.

    Only the signature is checked here; whether the session may still call the model (it is
    not final, its sandbox is live) is the gateway's question."""
    match = _MODEL_TOKEN.match(token or "")
    if match is None:
        return None
    session_id = uuid.UUID(match.group(1))
    expected = _hmac(f"model:{session_id}")
    return session_id if hmac.compare_digest(expected, match.group(2)) else None
