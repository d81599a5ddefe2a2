"""Stopping, reaping and reconciling sandboxes, so no process or cent leaks."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agents.models import LIVE_SESSION_STATUSES, SessionStatus
from sandboxes.backends import get_backend
from sandboxes.backends.base import BackendError, SandboxGone
from sandboxes.models import LIVE_SANDBOX_STATUSES, Sandbox, SandboxStatus
from sandboxes.runtime_client import RuntimeClient, RuntimeUnavailable
from sandboxes.services.deploy import publish_deployment
from sandboxes.services.sessions import sessions_cancel_for_sandbox, sessions_fail_for_sandbox

log = logging.getLogger(__name__)

GONE = "The sandbox disappeared (its process died or the provider removed it)."


def sandbox_stop(
    *, sandbox: Sandbox, status: str = SandboxStatus.STOPPED, reason: str = ""
) -> Sandbox:
    """Kill the sandbox at its provider, cancel its running sessions, mark the row final.

    Safe to call twice and on a sandbox still being created (the provisioning task sees the
    row is no longer `creating` and kills what it made).
    """
    with transaction.atomic():
        # Lock so a concurrent provision or a second stop sees one consistent status.
        sandbox = Sandbox.objects.select_for_update().get(pk=sandbox.pk)
        if not sandbox.is_live:
            return sandbox
        sandbox.status = SandboxStatus.STOPPING
        sandbox.save(update_fields=["status"])
        publish_deployment(sandbox, step="Stopping")
    if status == SandboxStatus.STOPPED:
        sessions_cancel_for_sandbox(sandbox=sandbox)
    else:
        sessions_fail_for_sandbox(sandbox=sandbox, message=reason or f"The sandbox {status}.")
    if sandbox.external_id:
        try:
            get_backend(sandbox.backend).kill(sandbox.external_id)
        except BackendError as exc:
            # The row still ends final; reconciliation kills anything left at the provider.
            log.warning("sandbox kill failed sandbox=%s error=%s", sandbox.pk, exc.message)
    Sandbox.objects.filter(pk=sandbox.pk).update(
        status=status, stopped_at=timezone.now(), error=reason
    )
    sandbox.refresh_from_db()
    publish_deployment(
        sandbox, step={"stopped": "Stopped", "expired": "Expired"}.get(status, "Failed")
    )
    log.info("sandbox stopped sandbox=%s status=%s", sandbox.pk, status)
    return sandbox


def sandboxes_reap(*, now=None) -> list[Sandbox]:
    """Expire sandboxes idle past their timeout (unless a session is running in them), and
    any older than the hard maximum lifetime regardless."""
    now = now or timezone.now()
    oldest = now - timedelta(seconds=settings.SANDBOX_MAX_LIFETIME_SECONDS)
    candidates = Sandbox.objects.filter(status=SandboxStatus.READY).filter(
        Q(expires_at__lt=now) | Q(created_at__lt=oldest)
    )
    reaped = []
    for sandbox in candidates:
        busy = sandbox.sessions.filter(status__in=LIVE_SESSION_STATUSES).exists()
        if busy and sandbox.created_at >= oldest:
            continue
        reason = (
            "Reached the maximum sandbox lifetime."
            if sandbox.created_at < oldest
            else ("Idle past its timeout.")
        )
        reaped.append(sandbox_stop(sandbox=sandbox, status=SandboxStatus.EXPIRED, reason=reason))
    return reaped


def sandboxes_reconcile() -> dict[str, int]:
    """Make the provider and the database agree.

    A provider sandbox no live row owns is killed. A live row whose provider sandbox is gone
    is marked failed. Rows stuck in `stopping` (a crash mid-stop) are finished.

    Deploys go on while this runs, so the rows are read before the provider is listed: a
    row read as `ready` had its provider sandbox before that, and one that becomes ready
    during the listing was read as `creating` and is left alone. A provider sandbox the
    snapshot does not know is looked up again, since its row may be newer than the snapshot.
    """
    killed = failed = 0
    for name in _backends_in_use():
        live = _live_rows(Sandbox.objects.filter(backend=name))
        try:
            backend = get_backend(name)
            found = backend.list()
        except BackendError as exc:
            log.warning("reconcile: cannot list backend=%s error=%s", name, exc.message)
            continue
        unknown = [info.sandbox_id for info in found if info.sandbox_id not in live]
        live |= _live_rows(Sandbox.objects.filter(pk__in=_uuids(unknown)))
        seen = set()
        for info in found:
            row = live.get(info.sandbox_id)
            if row is None or row.status == SandboxStatus.STOPPING:
                backend.kill(info.external_id)
                killed += 1
            else:
                seen.add(info.sandbox_id)
        for sandbox_id, row in live.items():
            if sandbox_id in seen or row.status in (SandboxStatus.PENDING, SandboxStatus.CREATING):
                continue
            if row.status == SandboxStatus.STOPPING:
                Sandbox.objects.filter(pk=row.pk).update(
                    status=SandboxStatus.STOPPED, stopped_at=timezone.now()
                )
                continue
            sandbox_stop(sandbox=row, status=SandboxStatus.FAILED, reason=_gone_reason(row))
            failed += 1
    if killed or failed:
        log.warning("reconcile: killed=%s failed=%s", killed, failed)
    return {"killed": killed, "failed": failed}


def _gone_reason(sandbox: Sandbox) -> str:
    """GONE, plus the resource limits the sandbox hit if the provider knows (a fork bomb
    or an OOM kill is the usual cause): the sessions' logs and the row's error say it."""
    try:
        hits = get_backend(sandbox.backend).limits_hit(sandbox.external_id)
    except BackendError:
        hits = []
    if not hits:
        return GONE
    return (
        f"{GONE} It had hit its limits: {', '.join(hits)} (see SANDBOX_PIDS_MAX, "
        "SANDBOX_MEMORY_MB, SANDBOX_DISK_MB)."
    )


def _live_rows(rows) -> dict[str, Sandbox]:
    return {str(s.pk): s for s in rows.filter(status__in=LIVE_SANDBOX_STATUSES)}


def _uuids(values: list[str]) -> list[uuid.UUID]:
    """The values that are sandbox ids (a provider may list sandboxes labelled otherwise)."""
    ids = []
    for value in values:
        try:
            ids.append(uuid.UUID(value))
        except (TypeError, ValueError, AttributeError):
            continue
    return ids


def sandboxes_check_busy() -> int:
    """Fail ready sandboxes that died under a running session; returns how many.

    Reconciliation would find them too, but only every few minutes, and until then their
    sessions hang. The runtime's /health is asked first (cheap, no provider call); only a
    sandbox whose runtime does not answer is looked up at the provider, and only one the
    provider says is gone is failed: a slow runtime in a live sandbox is left alone.
    """
    busy = Sandbox.objects.filter(
        status=SandboxStatus.READY,
        sessions__status__in=[SessionStatus.STARTING, SessionStatus.RUNNING],
    ).distinct()
    failed = 0
    for sandbox in busy:
        try:
            RuntimeClient(sandbox, timeout=5).health()
            continue
        except RuntimeUnavailable:
            pass
        try:
            get_backend(sandbox.backend).connect(sandbox.external_id)
            continue
        except SandboxGone:
            pass
        except BackendError as exc:
            log.warning("check busy: provider unreachable sandbox=%s error=%s", sandbox.pk, exc)
            continue
        log.warning("check busy: sandbox gone under its sessions sandbox=%s", sandbox.pk)
        sandbox_stop(sandbox=sandbox, status=SandboxStatus.FAILED, reason=_gone_reason(sandbox))
        failed += 1
    return failed


def _backends_in_use() -> list[str]:
    names = {settings.SANDBOX_BACKEND}
    names |= set(
        Sandbox.objects.filter(status__in=LIVE_SANDBOX_STATUSES).values_list("backend", flat=True)
    )
    if "e2b" in names and not settings.E2B_API_KEY:
        names.discard("e2b")
    return sorted(names)
