"""Fixtures every app's tests share: users, API clients, rows."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


@pytest.fixture
def make_user(db, django_user_model):
    def make(username: str = "alice", password: str = "pw-for-tests-1"):
        return django_user_model.objects.create_user(username=username, password=password)

    return make


@pytest.fixture
def user(make_user):
    return make_user("alice")


@pytest.fixture
def other_user(make_user):
    return make_user("mallory")


def client_for(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def api(user) -> APIClient:
    return client_for(user)


@pytest.fixture
def other_api(other_user) -> APIClient:
    return client_for(other_user)


@pytest.fixture
def make_agent(user):
    from agents.models import Agent

    def make(owner=None, **fields):
        fields.setdefault("name", "helper")
        return Agent.objects.create(owner=owner or user, **fields)

    return make


@pytest.fixture
def agent(make_agent):
    return make_agent()


@pytest.fixture
def make_session(agent):
    from agents.models import Session

    def make(agent_=None, **fields):
        fields.setdefault("prompt", "say hi")
        return Session.objects.create(agent=agent_ or agent, **fields)

    return make


# --- A live studio in this process: HTTP server, Celery worker threads, scripted model ----

MODEL_ENV = {
    "ANTHROPIC_API_KEY": "sk-ant-test-model-key-0123456789",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "CLAUDE_CODE_DISABLE_EXPERIMENTAL_BETAS": "1",
    "CLAUDE_CODE_MAX_RETRIES": "1",
}


@pytest.fixture
def scripted_model(monkeypatch):
    """The scripted Anthropic-compatible model, configured as the studio's model endpoint."""
    from agent_runtime.scripted_model import ScriptedModel

    model = ScriptedModel()
    base_url = model.start()
    monkeypatch.setenv("ANTHROPIC_BASE_URL", base_url)
    for name, value in MODEL_ENV.items():
        monkeypatch.setenv(name, value)
    yield model
    model.stop()


@pytest.fixture
def worker(transactional_db):
    """Celery worker threads consuming the configured broker inside this process."""
    from studio.celery import app
    from studio.embedded import EmbeddedWorker

    embedded = EmbeddedWorker(app, concurrency=4, beat=False)
    embedded.start()
    yield embedded
    embedded.stop()


@pytest.fixture
def live_studio(live_server, worker, settings):
    """The studio reachable over HTTP (sandboxes post their logs here) with a worker."""
    settings.BACKEND_API_URL = live_server.url
    return live_server


@pytest.fixture(scope="session", autouse=True)
def _no_sandbox_outlives_the_run():
    """Kill whatever local sandboxes a failing test left behind, and their directory."""
    yield
    import shutil

    from django.conf import settings

    from sandboxes.backends.local import LocalBackend

    backend = LocalBackend(data_dir=settings.SANDBOX_DATA_DIR)
    for info in backend.list():
        backend.kill(info.external_id)
    shutil.rmtree(settings.SANDBOX_DATA_DIR, ignore_errors=True)
