"""Provisioning when more than one task arrives for a sandbox: one provider sandbox, ready."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from sandboxes.backends import get_backend
from sandboxes.models import Sandbox
from sandboxes.services import deploy as deploy_service
from sandboxes.services.lifecycle import sandbox_stop
from sandboxes.tests.conftest import create_agent

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_second_task_for_a_sandbox_being_created_leaves_it_to_the_first(
    live_studio, api, local, monkeypatch
):
    """The stalled-deploy sweep queues a second task for a deploy that waited in the queue;
    it can arrive while the first is still creating the sandbox at the provider."""
    agent_id = create_agent(api)
    row = Sandbox.objects.create(agent_id=agent_id, backend="local")
    backend = get_backend("local")
    create = backend.create
    creating, release = threading.Event(), threading.Event()

    def create_after_a_pause(spec):
        if not creating.is_set():  # only the first task's create waits
            creating.set()
            release.wait(30)
        return create(spec)

    monkeypatch.setattr(backend, "create", create_after_a_pause)
    results = {}

    def first_task():
        try:
            results["first"] = deploy_service.sandbox_provision(sandbox_id=row.pk, claim="task-1")
        finally:
            connection.close()

    worker = threading.Thread(target=first_task)
    worker.start()
    try:
        assert creating.wait(30)
        second = deploy_service.sandbox_provision(sandbox_id=row.pk, claim="task-2")
        assert second.status == "creating"
    finally:
        release.set()
        worker.join(60)

    box = results["first"]
    assert box.status == "ready", box.error
    # One jail for this agent (sandboxes other tests left running are not this one's).
    assert [s.sandbox_id for s in backend.list() if s.agent_id == agent_id] == [str(row.pk)]
    sandbox_stop(sandbox=box)
    assert [s for s in backend.list() if s.agent_id == agent_id] == []


def test_a_redelivered_task_adopts_the_sandbox_its_first_delivery_made(live_studio, api, local):
    agent_id = create_agent(api)
    row = Sandbox.objects.create(agent_id=agent_id, backend="local")
    box = deploy_service.sandbox_provision(sandbox_id=row.pk, claim="task-1")
    made = box.external_id
    # As if the worker died after the jail answered but before the row said ready.
    Sandbox.objects.filter(pk=row.pk).update(status="creating")

    assert deploy_service.sandbox_provision(sandbox_id=row.pk, claim="task-2").status == "creating"
    again = deploy_service.sandbox_provision(sandbox_id=row.pk, claim="task-1")

    assert again.status == "ready", again.error
    assert again.external_id == made
    mine = [s.external_id for s in get_backend("local").list() if s.agent_id == agent_id]
    assert mine == [made]
    sandbox_stop(sandbox=again)
