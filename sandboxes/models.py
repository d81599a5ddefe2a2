from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils import timezone

from agents.models import SANDBOX_BACKENDS


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
    cost_per_second = models.DecimalField(max_digits=12, decimal_places=8, default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    last_activity_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)

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
        start = self.ready_at or self.created_at
        if start is None:
            return 0.0
        end = self.stopped_at or timezone.now()
        return max(0.0, (end - start).total_seconds())

    @property
    def cost_usd(self) -> Decimal:
        """Sandbox seconds times the rate in force when it was created."""
        seconds = Decimal(str(round(self.uptime_seconds, 3)))
        return (seconds * Decimal(str(self.cost_per_second))).quantize(Decimal("0.000001"))
