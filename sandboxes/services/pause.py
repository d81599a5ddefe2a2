"""Pausing idle sandboxes instead of destroying them, and resuming them on the next use.

A paused sandbox keeps its files, its HOME (so a conversation can be resumed) and, on E2B,
its memory; it costs no compute (sandboxes.pricing subtracts paused time). The reaper pauses
a ready sandbox idle past its timeout when the backend can pause (`backend.pause()` returns
True; otherwise the reaper stops it as before). The next execute, exec, files or packages call
resumes it through `backend.connect()` (E2B's connect resumes a paused sandbox) and waits for
the runtime. A paused sandbox is still reaped at SANDBOX_MAX_LIFETIME_SECONDS.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from sandboxes.backends import get_backend
from sandboxes.backends.base import BackendError, PlanLimitExceeded, SandboxGone
from sandboxes.models import Sandbox, SandboxStatus
from sandboxes.runtime_client import RuntimeClient, RuntimeUnavailable
from sandboxes.services.activity import sandbox_touch
from sandboxes.services.deploy import publish_deployment
from studio.errors import Conflict, QuotaExceeded, Unavailable

log = logging.getLogger(__name__)


def sandbox_pause(*, sandbox: Sandbox) -> Sandbox | None:
    """Pause a ready sandbox. None if its backend cannot pause (the caller stops it);
    otherwise the row, paused (or as it was, if the provider failed or it moved on)."""
    backend = get_backend(sandbox.backend)
    try:
        if not backend.pause(sandbox.external_id):
            return None
    except SandboxGone:
        return sandbox  # reconcile marks it failed
    except BackendError as exc:
        log.warning("sandbox pause failed sandbox=%s error=%s", sandbox.pk, exc.message)
        return sandbox
    now = timezone.now()
    with transaction.atomic():
        updated = Sandbox.objects.filter(pk=sandbox.pk, status=SandboxStatus.READY).update(
            status=SandboxStatus.PAUSED, paused_at=now, provider_timeout_at=None
        )
        sandbox.refresh_from_db()
        if updated:
            publish_deployment(sandbox, step="Paused")
    log.info("sandbox paused sandbox=%s", sandbox.pk)
    return sandbox


def sandbox_resume(*, sandbox: Sandbox) -> Sandbox:
    """Resume a paused sandbox and wait for its runtime; a ready one is returned as is.

    Two callers may resume at once: both ask the provider (connect is idempotent) and the
    first to commit moves the row to ready; the paused seconds are counted once.
    """
    if sandbox.status != SandboxStatus.PAUSED:
        return sandbox
    backend = get_backend(sandbox.backend)
    try:
        handle = backend.connect(sandbox.external_id)
        sandbox.runtime_url = handle.runtime_url
        RuntimeClient(sandbox).wait_healthy(timeout=settings.SANDBOX_READY_TIMEOUT_SECONDS)
    except SandboxGone:
        raise Conflict(
            "The paused sandbox no longer exists at its provider. Deploy the agent again.",
            code="SandboxGone",
        ) from None
    except PlanLimitExceeded as exc:
        raise QuotaExceeded(exc.message, code=exc.code) from None
    except (BackendError, RuntimeUnavailable) as exc:
        raise Unavailable(f"Could not resume the sandbox: {exc.message}") from None
    now = timezone.now()
    with transaction.atomic():
        # Lock: the paused seconds are added once, by whoever moves the row first.
        row = Sandbox.objects.select_for_update().get(pk=sandbox.pk)
        if row.status == SandboxStatus.PAUSED:
            if row.paused_at is not None:
                row.paused_seconds += max(0.0, (now - row.paused_at).total_seconds())
            row.status, row.paused_at, row.runtime_url = (
                SandboxStatus.READY,
                None,
                handle.runtime_url,
            )
            row.save(update_fields=["status", "paused_seconds", "paused_at", "runtime_url"])
            publish_deployment(row, step="Ready")
    if row.status != SandboxStatus.READY:
        raise Conflict(f"The sandbox is {row.status}, not ready.", code="SandboxNotReady")
    sandbox_touch(row)
    log.info("sandbox resumed sandbox=%s", row.pk)
    return row
