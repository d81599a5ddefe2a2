"""What the model gateway records: every model call it forwarded, and per-user limits."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ModelCall(models.Model):
    """One request a session's run made through the gateway, metered from the upstream's
    own answer (docs/pricing.md). `agent` and `user` are copied from the session so the
    day and month sums a budget needs read one indexed table."""

    session = models.ForeignKey(
        "agents.Session", on_delete=models.CASCADE, related_name="model_calls"
    )
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    path = models.CharField(max_length=200)
    model = models.CharField(max_length=100, blank=True)
    status = models.PositiveSmallIntegerField(help_text="The upstream's HTTP status.")
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cache_write_tokens = models.PositiveBigIntegerField(default=0)
    cache_read_tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(help_text="When the call reached the gateway.")
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["agent", "created_at"]),
            models.Index(fields=["user", "created_at"]),
            models.Index(fields=["session", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.model or '?'} · {self.status} · ${self.cost_usd}"


class UsageLimit(models.Model):
    """A user's own spending limits (null = no limit). `locked` (admin only) means an
    operator set them: the user can read them but no longer change them."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage_limit"
    )
    usd_per_day = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, help_text="Null: no limit."
    )
    usd_per_month = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, help_text="Null: no limit."
    )
    locked = models.BooleanField(
        default=False, help_text="Set by an operator: the user cannot change these limits."
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"limits of {self.user}"
