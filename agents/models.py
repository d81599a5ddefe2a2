from __future__ import annotations

import json
import re
import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from agent_runtime import protocol
from studio import crypto

# The wire contract (agent_runtime/protocol.py) owns the defaults an execute request takes
# and the vocabularies both sides speak; the models store them.
DEFAULT_TOOLS = list(protocol.DEFAULT_TOOLS)
# What the Claude Agent SDK can be allowed; the browser tool comes in through a skill.
KNOWN_TOOLS = [
    *DEFAULT_TOOLS,
    "WebFetch",
    "WebSearch",
    "TodoWrite",
    "NotebookEdit",
    "Task",
    "MultiEdit",
    "LS",
]
SANDBOX_BACKENDS = [("local", "local"), ("e2b", "e2b")]
PERMISSION_MODES = list(protocol.PERMISSION_MODES)
# Where a sandbox may connect (docs/security.md): `open` is the public internet only (never
# the host, loopback, link-local or private ranges), `allowlist` the listed domains only,
# `none` nothing but the studio itself.
NETWORK_POLICIES = ["open", "allowlist", "none"]
MAX_ALLOWLIST = 100

domain_pattern_validator = RegexValidator(
    r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
    "Use a domain name such as pypi.org, or *.example.com for its subdomains.",
    flags=re.IGNORECASE,
)

env_name_validator = RegexValidator(
    r"^[A-Za-z_][A-Za-z0-9_]{0,127}$",
    "Use letters, digits and underscores, not starting with a digit.",
)


# The fields a user sets on an agent (API, pages and services all speak of these).
AGENT_FIELDS = (
    "name",
    "description",
    "system_prompt",
    "model",
    "allowed_tools",
    "max_turns",
    "permission_mode",
    "sandbox_backend",
    "template",
    "timeout_seconds",
    "env",
    "network_policy",
    "network_allowlist",
    "budget_usd_per_run",
    "budget_usd_per_day",
    "budget_usd_per_month",
)


def default_tools() -> list[str]:
    return list(DEFAULT_TOOLS)


class Agent(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agents"
    )
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, max_length=2000)
    system_prompt = models.TextField(blank=True, max_length=100_000)
    model = models.CharField(max_length=100, blank=True, help_text="Blank: the SDK default.")
    allowed_tools = models.JSONField(default=default_tools)
    max_turns = models.PositiveIntegerField(
        default=protocol.DEFAULT_MAX_TURNS,
        validators=[MinValueValidator(1), MaxValueValidator(500)],
    )
    permission_mode = models.CharField(
        max_length=32,
        default=protocol.DEFAULT_PERMISSION_MODE,
        choices=[(m, m) for m in PERMISSION_MODES],
    )
    sandbox_backend = models.CharField(
        max_length=16,
        blank=True,
        choices=SANDBOX_BACKENDS,
        help_text="Blank: the site default (SANDBOX_BACKEND).",
    )
    template = models.CharField(max_length=200, blank=True, help_text="E2B template override.")
    timeout_seconds = models.PositiveIntegerField(
        default=1800, validators=[MinValueValidator(60), MaxValueValidator(24 * 3600)]
    )
    env = models.JSONField(default=dict, blank=True, help_text="Non-secret variables.")
    network_policy = models.CharField(
        max_length=16,
        default="open",
        choices=[(p, p) for p in NETWORK_POLICIES],
        help_text="open: the public internet only; allowlist: network_allowlist only; "
        "none: no network but the studio.",
    )
    network_allowlist = models.JSONField(
        default=list, blank=True, help_text="Domains (or *.domain) reachable under allowlist."
    )
    budget_usd_per_run = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, help_text="Null: no limit."
    )
    budget_usd_per_day = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, help_text="Null: no limit."
    )
    budget_usd_per_month = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, help_text="Null: no limit."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return self.name


class Skill(models.Model):
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="skills")
    name = models.SlugField(max_length=64)
    description = models.CharField(max_length=1024)
    body = models.TextField(max_length=200_000)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "name"], name="skill_name_unique_per_agent")
        ]

    def __str__(self) -> str:
        return self.name


class Secret(models.Model):
    """A value handed to the agent as an environment variable. Never readable back."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="secrets")
    name = models.CharField(max_length=128, validators=[env_name_validator])
    encrypted_value = models.TextField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "name"], name="secret_name_unique_per_agent")
        ]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Secret {self.name} (value hidden)>"

    def set_value(self, value: str) -> None:
        self.encrypted_value = crypto.encrypt(value)

    def reveal(self) -> str:
        """The plain value, for injecting into a sandbox and for redaction only."""
        return crypto.decrypt(self.encrypted_value)


# SessionStatus.QUEUED ... CANCELLED: the protocol's vocabulary, as model choices.
SessionStatus = models.TextChoices(
    "SessionStatus", [(status.upper(), status) for status in protocol.SESSION_STATUSES]
)
FINAL_SESSION_STATUSES = frozenset(SessionStatus(status) for status in protocol.FINAL_STATUSES)
LIVE_SESSION_STATUSES = frozenset(set(SessionStatus) - FINAL_SESSION_STATUSES)


class Session(models.Model):
    """One prompt run in an agent's sandbox."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="sessions")
    sandbox = models.ForeignKey(
        "sandboxes.Sandbox",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sessions",
    )
    prompt = models.TextField()
    status = models.CharField(
        max_length=16, choices=SessionStatus.choices, default=SessionStatus.QUEUED
    )
    claude_session_id = models.CharField(max_length=100, blank=True)
    resumed_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="continuations"
    )
    # The request's env, encrypted: needed to redact its values from this session's logs.
    encrypted_env = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    num_turns = models.PositiveIntegerField(default=0)
    total_cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    usage = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    last_seq = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["agent", "-created_at"]),
            models.Index(fields=["status"]),
        ]

    def __str__(self) -> str:
        return f"{self.agent} · {self.prompt[:40]}"

    def __repr__(self) -> str:
        return f"<Session {self.id} {self.status}>"

    def set_env(self, env: dict[str, str]) -> None:
        self.encrypted_env = crypto.encrypt(json.dumps(env)) if env else ""

    def reveal_env(self) -> dict[str, str]:
        return json.loads(crypto.decrypt(self.encrypted_env)) if self.encrypted_env else {}

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_SESSION_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        if not self.started_at:
            return None
        from django.utils import timezone

        end = self.finished_at or timezone.now()
        return max(0.0, (end - self.started_at).total_seconds())
