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
