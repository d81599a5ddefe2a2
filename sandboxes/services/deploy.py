"""Deploying an agent: one live sandbox per agent, created by a Celery task."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.models import Agent
from logs.events import publish_agent_event
from sandboxes.backends import backend_name_for, get_backend
from sandboxes.backends.base import BackendError, CreateSpec, SandboxGone
from sandboxes.models import LIVE_SANDBOX_STATUSES, Sandbox, SandboxStatus
from sandboxes.runtime_client import RuntimeClient, RuntimeUnavailable
from sandboxes.services import troubleshoot
from studio import tokens
from studio.errors import QuotaExceeded

log = logging.getLogger(__name__)


def live_sandbox(agent: Agent) -> Sandbox | None:
    return Sandbox.objects.filter(agent=agent, status__in=LIVE_SANDBOX_STATUSES).first()


def sandbox_deploy(*, agent: Agent) -> Sandbox:
    """Return the agent's live sandbox, or create a pending one and queue its provisioning.

    Concurrent calls for one agent meet at the database's one-live-sandbox constraint: the
    loser of the race returns the winner's row, so exactly one sandbox is made.
    """
    existing = live_sandbox(agent)
    if existing is not None:
        return existing
    _check_quota(agent)
    backend = backend_name_for(agent)
    try:
        with transaction.atomic():
            sandbox = Sandbox.objects.create(
                agent=agent,
                backend=backend,
                template=agent.template or (settings.E2B_TEMPLATE_ID if backend == "e2b" else ""),
                cost_per_second=settings.SANDBOX_COST_PER_SECOND,
                expires_at=timezone.now() + timedelta(seconds=agent.timeout_seconds),
            )
            publish_deployment(sandbox, step="Queued")
            transaction.on_commit(lambda: _queue_provision(sandbox.pk))
    except IntegrityError:
        existing = live_sandbox(agent)
        if existing is None:  # the winner already failed or stopped; try once more
            return sandbox_deploy(agent=agent)
        return existing
    log.info("sandbox queued sandbox=%s agent=%s backend=%s", sandbox.pk, agent.pk, backend)
    return sandbox


# A pending sandbox or queued session this old whose task never ran is queued again.
STALLED_SECONDS = 10


def _queue_provision(sandbox_id) -> None:
    from sandboxes.tasks import sandbox_provision

    queue_task(sandbox_provision, str(sandbox_id))


def queue_task(task, *args) -> None:
    """Send a task after commit. The API has already answered 202 for it, so a broker
    outage must not turn that into a 500 with the row left behind: the error is logged and
    `work_requeue_stalled` (every 15 s) sends the task again once the broker is back."""
    try:
        task.delay(*args)
    except Exception as exc:  # kombu raises its own and the transport's connection errors
        log.warning(
            "broker unavailable, task left for the requeue sweep task=%s args=%s error=%s",
            task.name,
            args,
            type(exc).__name__,
        )


def sandboxes_requeue_pending(*, now=None) -> int:
    """Queue provisioning again for sandboxes still `pending` after STALLED_SECONDS (their
    task was never sent, or was lost with the broker's memory). Provisioning is idempotent:
    a duplicate of a task that was only late finds the row past `pending` and returns."""
    cutoff = (now or timezone.now()) - timedelta(seconds=STALLED_SECONDS)
    ids = list(
        Sandbox.objects.filter(status=SandboxStatus.PENDING, created_at__lt=cutoff).values_list(
            "pk", flat=True
        )
    )
    for sandbox_id in ids:
        _queue_provision(sandbox_id)
    return len(ids)


def _check_quota(agent: Agent) -> None:
    live = Sandbox.objects.filter(
        agent__owner_id=agent.owner_id, status__in=LIVE_SANDBOX_STATUSES
    ).count()
    if live >= settings.SANDBOX_MAX_LIVE_PER_USER:
        raise QuotaExceeded(
            f"You already have {live} live sandboxes (the limit is "
            f"{settings.SANDBOX_MAX_LIVE_PER_USER}). Stop one before deploying another.",
            details={"limit": settings.SANDBOX_MAX_LIVE_PER_USER},
        )


def sandbox_provision(*, sandbox_id, claim: str) -> Sandbox | None:
    """Create the sandbox at its provider, write the agent's skills, wait for the runtime.

    `claim` names this delivery's task. Idempotent under retry (the task acknowledges
    late): a row past `creating` is left as it is; a `creating` row is taken over only by
    a redelivery of the task that claimed it, which adopts the provider sandbox that task
    may have made. Any other task for it (the sweep queues one for a deploy that waited
    long in the queue) returns at once: the claimer, or its redelivery, finishes the job.
    """
    with transaction.atomic():
        # Lock so two deliveries of the same task cannot both create a provider sandbox.
        sandbox = Sandbox.objects.select_for_update().filter(pk=sandbox_id).first()
        if sandbox is None or sandbox.status not in (SandboxStatus.PENDING, SandboxStatus.CREATING):
            return sandbox
        redelivered = sandbox.status == SandboxStatus.CREATING
        if redelivered and sandbox.provision_claim != claim:
            return sandbox
        sandbox.status = SandboxStatus.CREATING
        sandbox.provision_claim = claim
        sandbox.save(update_fields=["status", "provision_claim"])
        publish_deployment(sandbox, step="Creating sandbox")
    agent = sandbox.agent
    try:
        backend = get_backend(sandbox.backend)
        try:
            handle = _create_or_adopt(backend, sandbox, agent, redelivered=redelivered)
        except BackendError as exc:
            return _fail(sandbox, _create_problem(sandbox, agent, exc))
        Sandbox.objects.filter(pk=sandbox.pk).update(
            external_id=handle.external_id, runtime_url=handle.runtime_url
        )
        sandbox.external_id, sandbox.runtime_url = handle.external_id, handle.runtime_url
        publish_deployment(sandbox, step="Writing skills")
        _write_skills(backend, sandbox, agent)
        publish_deployment(sandbox, step="Waiting for the runtime")
        _wait_runtime(backend, sandbox)
    except SandboxGone as exc:
        if sandbox.backend != "local":
            return _fail(sandbox, exc.message)
        # A local jail whose processes are gone: its runtime exited at start.
        return _fail(
            sandbox, troubleshoot.runtime_never_answered(sandbox=sandbox, waited=None, exited=True)
        )
    except RuntimeUnavailable:
        waited = settings.SANDBOX_READY_TIMEOUT_SECONDS
        return _fail(sandbox, troubleshoot.runtime_never_answered(sandbox=sandbox, waited=waited))
    except BackendError as exc:
        return _fail(sandbox, exc.message)
    except Exception:
        log.exception("sandbox provisioning crashed sandbox=%s", sandbox.pk)
        return _fail(sandbox, "Provisioning failed unexpectedly; see the studio's log.")
    with transaction.atomic():
        sandbox = Sandbox.objects.select_for_update().get(pk=sandbox.pk)
        if sandbox.status != SandboxStatus.CREATING:  # stopped while we were creating it
            _kill_quietly(sandbox)
            return sandbox
        now = timezone.now()
        sandbox.status = SandboxStatus.READY
        sandbox.ready_at = now
        sandbox.last_activity_at = now
        sandbox.expires_at = now + timedelta(seconds=agent.timeout_seconds)
        sandbox.save(update_fields=["status", "ready_at", "last_activity_at", "expires_at"])
        publish_deployment(sandbox, step="Ready")
    log.info("sandbox ready sandbox=%s external_id=%s", sandbox.pk, sandbox.external_id)
    return sandbox


def _create_or_adopt(backend, sandbox: Sandbox, agent: Agent, *, redelivered: bool):
    # A redelivered task (the worker died mid-create) may have made the sandbox already.
    if redelivered:
        if sandbox.external_id:
            try:
                return backend.connect(sandbox.external_id)
            except SandboxGone:
                pass
        for info in backend.list():
            if info.sandbox_id == str(sandbox.pk):
                return backend.connect(info.external_id)
    return backend.create(
        CreateSpec(
            sandbox_id=str(sandbox.pk),
            agent_id=str(agent.pk),
            runtime_token=tokens.runtime_token(sandbox.pk),
            template=sandbox.template,
            timeout_seconds=agent.timeout_seconds,
            env={k: str(v) for k, v in (agent.env or {}).items()},
            network_policy=agent.network_policy,
            network_allowlist=tuple(agent.network_allowlist or ()),
        )
    )


# How often a deploy waiting for a local runtime checks that its jail still lives: a runtime
# that exits at start fails the deploy in about this long, not at the end of
# SANDBOX_READY_TIMEOUT_SECONDS. (A local check reads a state file; E2B's control plane is
# not asked every second.)
ALIVE_CHECK_SECONDS = 1.0


def _wait_runtime(backend, sandbox: Sandbox) -> None:
    """Wait for the runtime's /health. RuntimeUnavailable at the ready timeout; SandboxGone
    as soon as the sandbox's processes are gone."""
    deadline = time.monotonic() + settings.SANDBOX_READY_TIMEOUT_SECONDS
    client = RuntimeClient(sandbox)
    while True:
        left = deadline - time.monotonic()
        try:
            client.wait_healthy(timeout=max(0.0, min(left, ALIVE_CHECK_SECONDS)))
            return
        except RuntimeUnavailable:
            if left <= ALIVE_CHECK_SECONDS:
                raise
        if sandbox.backend == "local":
            backend.connect(sandbox.external_id)  # SandboxGone if it died


def _create_problem(sandbox: Sandbox, agent: Agent, exc: BackendError) -> str:
    """What a failed create tells the user: the guide's "No template found" names the
    variable and the command; anything else is the backend's own message."""
    if exc.code == "E2BTemplateNotFound":
        return troubleshoot.template_missing(
            template=sandbox.template, from_agent=bool(agent.template)
        )
    if exc.code == "E2BConfig" and sandbox.backend == "e2b" and not sandbox.template:
        return troubleshoot.template_not_configured()
    return exc.message


def _write_skills(backend, sandbox: Sandbox, agent: Agent) -> None:
    for skill in agent.skills.all():
        document = (
            f"---\nname: {skill.name}\ndescription: {_yaml_scalar(skill.description)}\n---\n\n"
            f"{skill.body}\n"
        )
        backend.write_file(
            sandbox.external_id,
            f"/workspace/.claude/skills/{skill.name}/SKILL.md",
            document.encode(),
        )


def _yaml_scalar(text: str) -> str:
    # A double-quoted YAML scalar: safe for colons, quotes and leading symbols.
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return f'"{escaped}"'


def _fail(sandbox: Sandbox, message: str) -> Sandbox:
    log.warning("sandbox failed sandbox=%s error=%s", sandbox.pk, message)
    _kill_quietly(sandbox)
    with transaction.atomic():
        Sandbox.objects.filter(pk=sandbox.pk).update(
            status=SandboxStatus.FAILED, error=message, stopped_at=timezone.now()
        )
        sandbox.refresh_from_db()
        publish_deployment(sandbox, step="Failed")
    from sandboxes.services.sessions import sessions_fail_for_sandbox

    sessions_fail_for_sandbox(sandbox=sandbox, message=f"The sandbox failed: {message}")
    return sandbox


def _kill_quietly(sandbox: Sandbox) -> None:
    if not sandbox.external_id:
        return
    try:
        get_backend(sandbox.backend).kill(sandbox.external_id)
    except BackendError as exc:
        log.warning("sandbox kill failed sandbox=%s error=%s", sandbox.pk, exc.message)


def publish_deployment(sandbox: Sandbox, *, step: str = "") -> None:
    from sandboxes.serializers import SandboxOutputSerializer

    publish_agent_event(
        sandbox.agent_id,
        {"type": "deployment", "deployment": SandboxOutputSerializer(sandbox).data, "step": step},
    )
