from __future__ import annotations

import time
import uuid

import pytest
from django.core.cache import cache

from studio.celery import app
from studio.embedded import EmbeddedWorker
from studio.tasks import ping
from studio.testing.servers import studio_process


def test_a_queued_task_runs_in_the_embedded_worker(settings):
    if not settings.EMBEDDED:
        pytest.skip("the in-memory broker exists only in embedded mode")
    worker = EmbeddedWorker(app, beat=False)
    worker.start()
    try:
        key = f"ping-{uuid.uuid4()}"
        ping.delay(key)
        deadline = time.monotonic() + 10
        while cache.get(key) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cache.get(key) == "pong"
    finally:
        worker.stop()


@pytest.mark.django_db(transaction=True)
def test_runstudio_serves_http_with_every_dependency_ready():
    import requests

    with studio_process() as (base, _proc):
        health = requests.get(base + "/healthz", timeout=5)
        assert health.status_code == 200, health.text
        assert health.json()["status"] == "ok"
        assert requests.get(base + "/api/agents/", timeout=5).status_code == 401
        docs = requests.get(base + "/api/docs/", timeout=5, allow_redirects=False)
        assert docs.status_code == 302  # to sign in
