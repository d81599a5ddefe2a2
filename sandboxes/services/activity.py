"""Sandbox activity: every use pushes the sandbox's expiry out, at the studio and at the provider.

The studio's own expiry (`expires_at`) is when the reaper may stop an idle sandbox. The
provider has a timeout of its own: E2B kills a sandbox that many seconds after creation unless
told otherwise, busy or not. So each activity (an execute, log lines arriving, exec, files,
packages) also moves the provider's timeout through the backend's `set_timeout`:

- to `timeout_seconds + KEEPALIVE_SLACK` from now (past the studio's expiry and the reaper's
  next pass, so the studio stops or pauses an idle sandbox, not the provider), capped by
  `E2B_MAX_TIMEOUT_SECONDS`: a studio that crashes leaks a sandbox for at most that long;
- at most once per `E2B_KEEPALIVE_SECONDS` per sandbox across all processes: the row's
  `provider_timeout_at` is claimed by a conditional UPDATE, and only the winner calls out;
- off the request's thread: the call to the provider runs on a small pool, so the log ingest
  path never waits for E2B.

A sandbox is created with the same timeout (deploy asks `provider_timeout`), an exec asks for
at least its own timeout before it starts, and `sandboxes_keep_alive` (run by the reaper
after it has paused or stopped the idle ones) renews every ready sandbox whose provider
timeout is near: one running a session asks for SESSION_TIMEOUT_SECONDS, since the studio does
not reap a busy sandbox and the provider must not either.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from agents.models import LIVE_SESSION_STATUSES as LIVE
from agents.models import Session
from sandboxes.backends import get_backend
from sandboxes.backends.base import BackendError
from sandboxes.models import LIVE_SANDBOX_STATUSES, Sandbox, SandboxStatus

log = logging.getLogger(__name__)

KEEPALIVE_SLACK = 120  # seconds past the studio's expiry; the reaper runs every 60 s
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sandbox-keepalive")


def sandbox_touch(sandbox: Sandbox) -> None:
    """Record activity now; the sandbox then expires after its agent's timeout, and the
    provider is asked to keep it that long too."""
    now = timezone.now()
    timeout = sandbox.agent.timeout_seconds
    # Only a live sandbox: a late touch must not push a stopped one's expiry around.
    Sandbox.objects.filter(pk=sandbox.pk, status__in=LIVE_SANDBOX_STATUSES).update(
        last_activity_at=now, expires_at=now + timedelta(seconds=timeout)
    )
    sandbox.last_activity_at, sandbox.expires_at = now, now + timedelta(seconds=timeout)
    sandbox_keep_alive(sandbox=sandbox, now=now)


def provider_timeout(idle_timeout: int, *, at_least: float = 0) -> int:
    """Seconds the provider should keep a sandbox from now (see the module docstring)."""
    wanted = max(idle_timeout, int(at_least)) + KEEPALIVE_SLACK
    return min(settings.E2B_MAX_TIMEOUT_SECONDS, wanted)


def sandbox_keep_alive(
    *, sandbox: Sandbox, now=None, at_least: float = 0, wait: bool = False
) -> bool:
    """Extend the provider's timeout (to cover at least `at_least` seconds of work from
    now) unless it was extended less than E2B_KEEPALIVE_SECONDS ago. Returns whether this
    call claimed the extension. `wait` blocks until the provider answered."""
    if not sandbox.external_id:
        return False
    now = now or timezone.now()
    seconds = provider_timeout(sandbox.agent.timeout_seconds, at_least=at_least)
    until = now + timedelta(seconds=seconds)
    stale = until - timedelta(seconds=settings.E2B_KEEPALIVE_SECONDS)
    # Claimed by one conditional UPDATE, so concurrent processes make one provider call.
    claimed = (
        Sandbox.objects.filter(pk=sandbox.pk, status=SandboxStatus.READY)
        .filter(Q(provider_timeout_at__isnull=True) | Q(provider_timeout_at__lte=stale))
        .update(provider_timeout_at=until)
    )
    if not claimed:
        return False
    sandbox.provider_timeout_at = until
    job = _pool.submit(_extend, sandbox.backend, sandbox.external_id, seconds, str(sandbox.pk))
    if wait:
        job.result()
    return True


def _extend(backend_name: str, external_id: str, seconds: int, sandbox_id: str) -> None:
    try:
        get_backend(backend_name).set_timeout(external_id, seconds)
    except BackendError as exc:
        # A gone sandbox is reconcile's to notice; anything else is retried on the next touch.
        log.warning("keep-alive failed sandbox=%s error=%s", sandbox_id, exc.message)
        Sandbox.objects.filter(pk=sandbox_id).update(provider_timeout_at=None)


def sandboxes_keep_alive(*, now=None) -> int:
    """Renew the provider timeout of ready sandboxes whose timeout is near (or was never
    extended); a busy one for a whole session. Returns how many were renewed."""
    now = now or timezone.now()
    soon = now + timedelta(seconds=2 * settings.E2B_KEEPALIVE_SECONDS + 60)
    rows = (
        Sandbox.objects.select_related("agent")
        .filter(status=SandboxStatus.READY)
        .filter(Q(provider_timeout_at__isnull=True) | Q(provider_timeout_at__lt=soon))
        .annotate(busy=Exists(Session.objects.filter(sandbox=OuterRef("pk"), status__in=LIVE)))
    )
    renewed = 0
    for sandbox in rows:
        at_least = settings.SESSION_TIMEOUT_SECONDS if sandbox.busy else 0
        renewed += sandbox_keep_alive(sandbox=sandbox, now=now, at_least=at_least, wait=True)
    return renewed
