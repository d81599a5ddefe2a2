"""Sandbox activity: every action pushes the sandbox's expiry out."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from sandboxes.models import LIVE_SANDBOX_STATUSES, Sandbox


def sandbox_touch(sandbox: Sandbox) -> None:
    """Record activity now; the sandbox then expires after its agent's timeout."""
    now = timezone.now()
    timeout = sandbox.agent.timeout_seconds
    # Only a live sandbox: a late touch must not push a stopped one's expiry around.
    Sandbox.objects.filter(pk=sandbox.pk, status__in=LIVE_SANDBOX_STATUSES).update(
        last_activity_at=now, expires_at=now + timedelta(seconds=timeout)
    )
    sandbox.last_activity_at, sandbox.expires_at = now, now + timedelta(seconds=timeout)
