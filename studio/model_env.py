"""The studio's model settings: what the gateway uses upstream, and what a sandbox run gets.

The operator's credential (ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN) stays in the studio:
a run gets ANTHROPIC_BASE_URL pointing at the studio's model gateway and a per-session
credential as ANTHROPIC_API_KEY (docs/gateway.md). Everything is read from the environment
when it is used, so no restart is needed after setting it.
"""

from __future__ import annotations

import os
import re

from django.conf import settings

from studio import tokens

# Where the gateway is mounted; sandboxes reach it at BACKEND_API_URL + this.
GATEWAY_PATH = "/api/internal/model"
DEFAULT_UPSTREAM = "https://api.anthropic.com"
# Claude Code sends this beta flag with OAuth tokens; the CLI in the sandbox holds an API
# key (the gateway's credential), so the gateway adds it when it speaks OAuth upstream.
OAUTH_BETA = "oauth-2025-04-20"
# CLAUDE_CODE_* settings pass on to runs, except credentials and switches that would send
# the CLI past the gateway to another provider.
_NOT_FOR_SANDBOXES = re.compile(
    r"TOKEN|KEY|SECRET|PASSWORD|CREDENTIAL|AUTH|USE_BEDROCK|USE_VERTEX|USE_FOUNDRY", re.I
)


def model_env() -> dict[str, str]:
    """ANTHROPIC_API_KEY / CLAUDE_CODE_OAUTH_TOKEN / ANTHROPIC_BASE_URL and every
    CLAUDE_CODE_* variable set on the studio: the studio's own settings, credentials
    included (the redactor masks their values; only the gateway sends them anywhere)."""
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


def gateway_url() -> str:
    """ANTHROPIC_BASE_URL as a sandbox sees it: the studio's model gateway."""
    return settings.BACKEND_API_URL.rstrip("/") + GATEWAY_PATH


def sandbox_model_env(*, session_id) -> dict[str, str]:
    """The model variables one session's run gets: the gateway's URL, the session's own
    credential, and the studio's non-secret CLAUDE_CODE_* settings. Nonessential traffic is
    off unless the operator says otherwise: it would go to api.anthropic.com, which the
    sandbox holds no credential for."""
    env = {
        name: value
        for name, value in model_env().items()
        if name.startswith("CLAUDE_CODE_") and not _NOT_FOR_SANDBOXES.search(name)
    }
    env.setdefault("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
    env["ANTHROPIC_BASE_URL"] = gateway_url()
    env["ANTHROPIC_API_KEY"] = tokens.model_token(session_id)
    return env


def upstream_url() -> str:
    """Where the gateway forwards: the studio's ANTHROPIC_BASE_URL, else Anthropic's API."""
    return (os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_UPSTREAM).rstrip("/")


def upstream_auth_headers() -> dict[str, str]:
    """The operator's credential as upstream headers: x-api-key for ANTHROPIC_API_KEY (used
    when both are set), else Authorization: Bearer for CLAUDE_CODE_OAUTH_TOKEN (the gateway
    adds OAUTH_BETA to anthropic-beta). Empty when neither is set."""
    key = os.environ.get("ANTHROPIC_API_KEY")
    if key:
        return {"x-api-key": key}
    oauth = os.environ.get("CLAUDE_CODE_OAUTH_TOKEN")
    if oauth:
        return {"authorization": f"Bearer {oauth}"}
    return {}
