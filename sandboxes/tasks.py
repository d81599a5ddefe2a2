"""Celery tasks: take ids, call services, safe to run twice."""

from __future__ import annotations

from celery import shared_task


@shared_task(bind=True, acks_late=True, max_retries=3)
def sandbox_provision(self, sandbox_id: str) -> None:
    from sandboxes.services.deploy import sandbox_provision as provision

    # A redelivery keeps its task id: that is how provisioning tells one from a duplicate.
    provision(sandbox_id=sandbox_id, claim=self.request.id or "")


@shared_task(acks_late=True)
def session_start(session_id: str) -> None:
    from sandboxes.services.sessions import session_start as start

    start(session_id=session_id)


@shared_task(acks_late=True)
def sandbox_stop(sandbox_id: str) -> None:
    from sandboxes.models import Sandbox
    from sandboxes.services.lifecycle import sandbox_stop as stop

    sandbox = Sandbox.objects.filter(pk=sandbox_id).first()
    if sandbox is not None:
        stop(sandbox=sandbox)


@shared_task
def sandboxes_reap() -> int:
    from sandboxes.services.lifecycle import sandboxes_reap as reap

    return len(reap())


@shared_task
def sandboxes_reconcile() -> dict:
    from sandboxes.services.lifecycle import sandboxes_reconcile as reconcile

    return reconcile()


@shared_task
def sandboxes_check_busy() -> int:
    from sandboxes.services.lifecycle import sandboxes_check_busy as check

    return check()


@shared_task
def work_requeue_stalled() -> int:
    from sandboxes.services.deploy import sandboxes_requeue_pending
    from sandboxes.services.sessions import sessions_requeue_queued

    return sandboxes_requeue_pending() + sessions_requeue_queued()


@shared_task
def sessions_diagnose_silent() -> int:
    from sandboxes.services.sessions import sessions_diagnose_silent as diagnose

    return diagnose()
