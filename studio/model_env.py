"""The model credentials and Claude Code settings the studio hands to every sandbox run."""

from __future__ import annotations

import os

from django.conf import settings


def model_env() -> dict[str, str]:
    """ANTHROPIC_API_KEY / CLAUDE_CODE_OAUTH_TOKEN / ANTHROPIC_BASE_URL and every
    CLAUDE_CODE_* variable set on the studio, read when a run starts (so a restart is not
    needed after setting them)."""
    names = set(settings.MODEL_ENV_NAMES) | {n for n in os.environ if n.startswith("CLAUDE_CODE_")}
    return {n: os.environ[n] for n in sorted(names) if os.environ.get(n)}


def missing_model_credentials() -> str | None:
    """A sentence saying what to set when no model credential is configured, else None."""
    env = model_env()
    if env.get("ANTHROPIC_API_KEY") or env.get("CLAUDE_CODE_OAUTH_TOKEN"):
        return None
    return (
        "No model credentials are configured. Set ANTHROPIC_API_KEY (or "
        "CLAUDE_CODE_OAUTH_TOKEN) in the studio's environment and restart it."
    )
