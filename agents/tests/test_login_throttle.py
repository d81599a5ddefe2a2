"""Sign-in throttling (django-axes): guessing a password is limited per username and address."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.utils import timezone

pytestmark = pytest.mark.django_db

RIGHT = "pw-for-tests-1"
HOME = "203.0.113.7"


def sign_in(client, password, *, username="alice", ip=HOME, url="/login/"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=ip)


def fail(client, times, **kwargs):
    for _ in range(times):
        answer = sign_in(client, "wrong-password", **kwargs)
        assert answer.status_code in (200, 429)


def test_it_locks_a_username_out_after_five_failures_even_with_the_right_password(user, settings):
    client = Client()
    fail(client, settings.AXES_FAILURE_LIMIT)
    answer = sign_in(client, RIGHT)
    assert answer.status_code == 429
    page = answer.content.decode()
    assert "Too many failed sign-ins" in page and "15 minutes" in page
    assert 'name="username"' in page  # still the sign-in page
    assert client.get("/").status_code == 302  # not signed in


def test_failures_below_the_limit_do_not_lock(user, settings):
    client = Client()
    fail(client, settings.AXES_FAILURE_LIMIT - 1)
    answer = sign_in(client, RIGHT)
    assert answer.status_code == 302 and answer["Location"] == "/"


def test_a_success_resets_the_count(user, settings):
    client = Client()
    fail(client, settings.AXES_FAILURE_LIMIT - 1)
    assert sign_in(client, RIGHT).status_code == 302
    client.post("/logout/")
    fail(client, settings.AXES_FAILURE_LIMIT - 1)
    assert sign_in(client, RIGHT).status_code == 302


def test_the_lock_holds_for_one_username_from_one_address_only(user, other_user, settings):
    fail(Client(), settings.AXES_FAILURE_LIMIT)
    # The same user from elsewhere, and another user from the same address, still sign in.
    assert sign_in(Client(), RIGHT, ip="198.51.100.20").status_code == 302
    assert sign_in(Client(), RIGHT, username="mallory").status_code == 302


def test_the_lock_lifts_after_the_cool_off(user, settings):
    client = Client()
    fail(client, settings.AXES_FAILURE_LIMIT)
    assert sign_in(client, RIGHT).status_code == 429
    past = timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    AccessAttempt.objects.update(attempt_time=past)  # the cool-off has passed
    assert sign_in(client, RIGHT).status_code == 302


def test_the_admin_sign_in_is_throttled_too(django_user_model, settings):
    django_user_model.objects.create_superuser("root", "root@example.com", "pw-admin-1")
    client = Client()
    fail(client, settings.AXES_FAILURE_LIMIT, username="root", url="/admin/login/")
    answer = sign_in(client, "pw-admin-1", username="root", url="/admin/login/")
    assert answer.status_code == 429
    assert client.get("/admin/").status_code == 302


def test_operators_see_the_attempts_in_admin(user, django_user_model, settings):
    fail(Client(), 3)
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw-admin-1")
    client = Client()
    client.force_login(admin)
    page = client.get("/admin/axes/accessattempt/").content.decode()
    assert "alice" in page and HOME in page
    assert "wrong-password" not in page  # axes keeps the password out of its rows
