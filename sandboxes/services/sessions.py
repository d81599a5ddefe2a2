"""Running prompts: create a session, hand it to the sandbox's runtime, cancel, diagnose."""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from agent_runtime import protocol
from agent_runtime.protocol import INGEST_PATH
from agents.models import FINAL_SESSION_STATUSES, Agent, Session, SessionStatus
from gateway.budgets import budget_enforce
from logs.events import publish_session
from logs.redaction import redactor_for_session
from sandboxes.models import Sandbox, SandboxStatus
from sandboxes.runtime_client import RuntimeClient, RuntimeUnavailable
from sandboxes.services import troubleshoot
from sandboxes.services.activity import sandbox_touch
from sandboxes.services.deploy import STALLED_SECONDS, queue_task, sandbox_deploy
from sandboxes.services.pause import sandbox_resume
from studio import tokens
from studio.errors import ApplicationError, Conflict, NotFound
from studio.model_env import missing_model_credentials, sandbox_model_env

log = logging.getLogger(__name__)

MAX_PROMPT_CHARS = 100_000
# How long a queued session waits for its sandbox, beyond the deploy's own wait for the
# runtime (SANDBOX_READY_TIMEOUT_SECONDS): creating the sandbox comes first.
CREATE_WAIT_SECONDS = 60
# A started session from which nothing arrives within this long is diagnosed.
SILENCE_SECONDS = 60


def session_execute(*, agent: Agent, prompt: str, env: dict[str, str], resume=None) -> Session:
    """Create a session, deploying the agent first if needed, and queue its start.

    Returns at once; a Celery task waits for the sandbox and hands the run to the runtime.
    """
    problem = missing_model_credentials()
    if problem:
        raise Conflict(problem, code="ModelNotConfigured")
    budget_enforce(agent=agent)  # 429 naming the limit reached and the amount spent
    resumed_from = _resumable(agent, resume) if resume else None
    with transaction.atomic():
        sandbox = sandbox_deploy(agent=agent)
        session = Session(agent=agent, sandbox=sandbox, prompt=prompt, resumed_from=resumed_from)
        session.set_env(env)
        # The prompt is stored, listed and shown like a log line, so a secret value typed
        # into it is masked the same way (the run gets the masked prompt: the value itself
        # reaches the run through its env).
        session.prompt = redactor_for_session(session).text(prompt)
        session.save()
        publish_session(session)
        transaction.on_commit(lambda: _queue_start(session.pk))
    log.info("session queued session=%s agent=%s sandbox=%s", session.pk, agent.pk, sandbox.pk)
    return session


def _resumable(agent: Agent, resume) -> Session:
    earlier = Session.objects.filter(agent=agent, pk=resume).first()
    if earlier is None:
        raise NotFound("The session to resume was not found for this agent.")
    if not earlier.claude_session_id:
        raise Conflict(
            "That session has no conversation to continue yet (it has not started or failed "
            "before the model answered).",
            code="NotResumable",
        )
    return earlier


def _queue_start(session_id) -> None:
    from sandboxes.tasks import session_start

    queue_task(session_start, str(session_id))


def sessions_requeue_queued(*, now=None) -> int:
    """Queue the start again for sessions still `queued` after STALLED_SECONDS whose sandbox
    is no longer being made (a start task waits for that itself). Starting is idempotent: a
    duplicate finds the session past `queued` and returns."""
    cutoff = (now or timezone.now()) - timedelta(seconds=STALLED_SECONDS)
    ids = list(
        Session.objects.filter(status=SessionStatus.QUEUED, created_at__lt=cutoff)
        .exclude(sandbox__status__in=[SandboxStatus.PENDING, SandboxStatus.CREATING])
        .values_list("pk", flat=True)
    )
    for session_id in ids:
        _queue_start(session_id)
    return len(ids)


def session_start(*, session_id) -> Session | None:
    """Wait for the session's sandbox to be ready, then POST the run to its runtime."""
    session = Session.objects.select_related("agent", "sandbox", "resumed_from").get(pk=session_id)
    if session.status != SessionStatus.QUEUED:
        return session  # a redelivered task: the run was already handed over
    sandbox = _wait_ready(session.sandbox)
    if sandbox is not None and sandbox.status == SandboxStatus.PAUSED:
        try:
            sandbox = sandbox_resume(sandbox=sandbox)
        except ApplicationError as exc:
            return session_fail(session=session, message=f"The sandbox did not resume: {exc}")
    if sandbox is None or sandbox.status != SandboxStatus.READY:
        reason = (sandbox.error if sandbox else "") or "the sandbox did not become ready"
        return session_fail(session=session, message=f"The sandbox is not available: {reason}")
    agent = session.agent
    notices = troubleshoot.browser_notices(agent=agent, sandbox=sandbox)
    body = protocol.execute_request(
        session_id=str(session.pk),
        prompt=session.prompt,
        options={
            "system_prompt": agent.system_prompt,
            "model": agent.model,
            "allowed_tools": agent.allowed_tools,
            "max_turns": agent.max_turns,
            "permission_mode": agent.permission_mode,
            "resume": session.resumed_from.claude_session_id if session.resumed_from else None,
            "timeout_seconds": settings.SESSION_TIMEOUT_SECONDS,
            "notices": notices,
        },
        env={
            **{k: str(v) for k, v in (agent.env or {}).items()},
            **{s.name: s.reveal() for s in agent.secrets.all()},
            **session.reveal_env(),
            # The model gateway's URL and this session's credential; never the real key.
            **sandbox_model_env(session_id=session.pk),
        },
        ingest={
            "url": settings.BACKEND_API_URL.rstrip("/") + INGEST_PATH,
            "token": tokens.session_token(session.pk),
        },
    )
    with transaction.atomic():
        updated = Session.objects.filter(pk=session.pk, status=SessionStatus.QUEUED).update(
            status=SessionStatus.STARTING, started_at=timezone.now()
        )
        if not updated:
            return Session.objects.get(pk=session.pk)
        if notices:  # the run goes on; its answer says what will not work (and the fix)
            Session.objects.filter(pk=session.pk).update(error=" ".join(notices))
        session.refresh_from_db()
        publish_session(session)
    try:
        RuntimeClient(sandbox).execute(body)
    except RuntimeUnavailable as exc:
        return session_fail(
            session=session, message=f"The sandbox runtime refused the run: {exc.message}"
        )
    sandbox_touch(sandbox)
    return session


def _wait_ready(sandbox: Sandbox | None) -> Sandbox | None:
    deadline = time.monotonic() + settings.SANDBOX_READY_TIMEOUT_SECONDS + CREATE_WAIT_SECONDS
    while sandbox is not None:
        sandbox.refresh_from_db()
        if sandbox.status not in (SandboxStatus.PENDING, SandboxStatus.CREATING):
            return sandbox
        if time.monotonic() > deadline:
            return sandbox
        time.sleep(0.05)
    return None


def session_fail(*, session: Session, message: str) -> Session:
    """End a live session as failed with a red line saying why (no-op once final)."""
    return _finish(session, SessionStatus.FAILED, message)


def session_cancel(*, session: Session) -> Session:
    """Stop a run: kill its process tree in the sandbox and mark the session cancelled."""
    if session.status in FINAL_SESSION_STATUSES:
        return session
    sandbox = session.sandbox
    if session.status != SessionStatus.QUEUED and sandbox and sandbox.runtime_url:
        try:
            RuntimeClient(sandbox).cancel(session.pk)
            # The runtime ships its own closing lines; a line from here could take their seq.
            return _finish(session, SessionStatus.CANCELLED, "", line=False)
        except RuntimeUnavailable as exc:
            log.warning("cancel: runtime unreachable session=%s error=%s", session.pk, exc.message)
    return _finish(session, SessionStatus.CANCELLED, "Cancelled by the user.")


def sessions_fail_for_sandbox(*, sandbox: Sandbox, message: str) -> None:
    for session in Session.objects.filter(sandbox=sandbox).exclude(
        status__in=FINAL_SESSION_STATUSES
    ):
        session_fail(session=session, message=message)


def sessions_cancel_for_sandbox(*, sandbox: Sandbox) -> None:
    for session in Session.objects.filter(sandbox=sandbox).exclude(
        status__in=FINAL_SESSION_STATUSES
    ):
        _finish(session, SessionStatus.CANCELLED, "Cancelled: the sandbox was stopped.")


def _finish(session: Session, status: str, message: str, *, line: bool = True) -> Session:
    """Make a live session final. With `line`, the studio appends the closing line itself:
    only when nothing more can come from the sandbox for this session."""
    from logs.services import studio_line_append

    with transaction.atomic():
        # Lock: the ingest may be finishing the same session from the sandbox's side.
        session = Session.objects.select_for_update().get(pk=session.pk)
        if session.status in FINAL_SESSION_STATUSES:
            return session
        session.status = status
        # The message may quote sandbox output (a runtime's refusal): masked like a line.
        message = redactor_for_session(session).text(message) if message else message
        session.error = "" if status == SessionStatus.CANCELLED else message
        session.finished_at = timezone.now()
        session.save(update_fields=["status", "error", "finished_at"])
        if line:
            kind = "error" if status == SessionStatus.FAILED else "status"
            studio_line_append(session=session, kind=kind, text=message)
        publish_session(session)
    return session


def sessions_diagnose_silent() -> int:
    """Fail sessions that started over a minute ago and from which no line ever arrived,
    naming the likely cause. Returns how many were diagnosed."""
    cutoff = timezone.now() - timedelta(seconds=SILENCE_SECONDS)
    silent = Session.objects.filter(
        status__in=[SessionStatus.STARTING, SessionStatus.RUNNING],
        started_at__lt=cutoff,
        last_seq=0,
    ).select_related("sandbox")
    count = 0
    for session in silent:
        session_fail(session=session, message=_silence_cause(session))
        count += 1
    return count


def _silence_cause(session: Session) -> str:
    sandbox = session.sandbox
    if sandbox is None or not sandbox.runtime_url:
        return "No output arrived within a minute and the session has no sandbox."
    client = RuntimeClient(sandbox, timeout=5)
    try:
        client.health()
    except RuntimeUnavailable:
        return troubleshoot.no_output_runtime_gone(sandbox=sandbox)
    with contextlib.suppress(RuntimeUnavailable):
        client.cancel(session.pk)
    return troubleshoot.no_output(
        session=session, ingest_url=settings.BACKEND_API_URL.rstrip("/") + INGEST_PATH
    )
