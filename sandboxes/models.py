from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils import timezone

from agents.models import SANDBOX_BACKENDS
from sandboxes import pricing


class SandboxStatus(models.TextChoices):
    PENDING = "pending"
    CREATING = "creating"
    READY = "ready"
    PAUSED = "paused"  # idle: processes stopped or frozen, files kept; the next use resumes
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"
    EXPIRED = "expired"


FINAL_SANDBOX_STATUSES = frozenset(
    {SandboxStatus.STOPPED, SandboxStatus.FAILED, SandboxStatus.EXPIRED}
)
LIVE_SANDBOX_STATUSES = frozenset(set(SandboxStatus) - FINAL_SANDBOX_STATUSES)


class Sandbox(models.Model):
    """One deployment of an agent into an isolated machine."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="sandboxes")
    backend = models.CharField(max_length=16, choices=SANDBOX_BACKENDS)
    external_id = models.CharField(max_length=200, blank=True, db_index=True)
    template = models.CharField(max_length=200, blank=True)
    runtime_url = models.CharField(max_length=500, blank=True)
    status = models.CharField(
        max_length=16, choices=SandboxStatus.choices, default=SandboxStatus.PENDING
    )
    error = models.TextField(blank=True)
    # The provisioning task (its Celery task id) that took this sandbox from `pending` to
    # `creating`. Only a redelivery of that same task may take a `creating` row over: a
    # second task queued for it (by the stalled-deploy sweep) leaves it alone.
    provision_claim = models.CharField(max_length=64, blank=True, editable=False)
    # Size, as the provider reports it (E2B's cpuCount / memoryMB), and the USD/second it is
    # billed at, fixed when the size is known (sandboxes.pricing has the price table).
    vcpus = models.PositiveSmallIntegerField(null=True, blank=True)
    memory_mb = models.PositiveIntegerField(null=True, blank=True)
    cost_per_second = models.DecimalField(max_digits=12, decimal_places=8, default=0)
    # Paused time costs no compute: the seconds of past pauses, and when the current began.
    paused_seconds = models.FloatField(default=0)
    paused_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    last_activity_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    # When the provider will kill the sandbox unless told otherwise, as last asked for by
    # the keep-alive (sandboxes.services.activity); null until the first extension.
    provider_timeout_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # At most one live sandbox per agent: concurrent deploys collide here, and
            # the loser reuses the winner's row.
            models.UniqueConstraint(
                fields=["agent"],
                condition=Q(status__in=sorted(LIVE_SANDBOX_STATUSES)),
                name="one_live_sandbox_per_agent",
            )
        ]
        indexes = [models.Index(fields=["status", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.backend}:{self.external_id or self.id}"

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_SANDBOX_STATUSES

    @property
    def uptime_seconds(self) -> float:
        """The billed seconds: from creation to stop, not counting paused time."""
        return pricing.billed_seconds(self)

    @property
    def cost_usd(self) -> Decimal:
        """What the sandbox has cost so far (see sandboxes.pricing)."""
        return pricing.sandbox_cost(self)
