from __future__ import annotations

import pytest
from django.urls import reverse

from agents.models import Secret, Session
from logs.models import LogLine
from sandboxes.models import Sandbox

pytestmark = pytest.mark.django_db

SECRET_VALUE = "ghp_supersecretvalue123"


@pytest.fixture
def staff_client(client, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw-admin-1")
    client.force_login(admin)
    return client


@pytest.fixture
def rows(agent):
    secret = Secret(agent=agent, name="GITHUB_TOKEN")
    secret.set_value(SECRET_VALUE)
    secret.save()
    agent.skills.create(name="greet", description="d", body="b")
    sandbox = Sandbox.objects.create(agent=agent, backend="local", status="ready")
    session = Session.objects.create(agent=agent, sandbox=sandbox, prompt="hi")
    from django.utils import timezone

    line = LogLine.objects.create(
        session=session, seq=1, kind="stdout", text="x", ts=timezone.now()
    )
    return {
        "agent": agent,
        "secret": secret,
        "sandbox": sandbox,
        "session": session,
        "logline": line,
    }


@pytest.mark.parametrize(
    "name", ["agents_agent", "agents_secret", "agents_session", "sandboxes_sandbox", "logs_logline"]
)
def test_every_model_has_a_searchable_changelist(staff_client, rows, name):
    res = staff_client.get(reverse(f"admin:{name}_changelist") + "?q=a")
    assert res.status_code == 200


def test_agent_page_edits_skills_and_secrets_inline(staff_client, rows):
    page = staff_client.get(reverse("admin:agents_agent_change", args=[rows["agent"].pk]))
    html = page.content.decode()
    assert "greet" in html  # the skill, inline
    assert "GITHUB_TOKEN" in html  # the secret's name, inline, without its value


@pytest.mark.parametrize(
    "name", ["agents_agent", "agents_secret", "sandboxes_sandbox", "agents_session", "logs_logline"]
)
def test_change_pages_render_and_never_show_a_secret_value(staff_client, rows, name):
    obj = rows[name.split("_")[1]]
    res = staff_client.get(reverse(f"admin:{name}_change", args=[obj.pk]))
    assert res.status_code == 200
    page = res.content.decode()
    assert SECRET_VALUE not in page
    assert rows["secret"].encrypted_value not in page


def test_admin_can_replace_a_secret_without_seeing_it(staff_client, rows):
    secret = rows["secret"]
    url = reverse("admin:agents_secret_change", args=[secret.pk])
    res = staff_client.post(
        url, {"agent": rows["agent"].pk, "name": "GITHUB_TOKEN", "value": "new-value-1"}
    )
    assert res.status_code == 302
    secret.refresh_from_db()
    assert secret.reveal() == "new-value-1"
    # Saving without a value keeps the old one.
    staff_client.post(url, {"agent": rows["agent"].pk, "name": "GITHUB_TOKEN", "value": ""})
    secret.refresh_from_db()
    assert secret.reveal() == "new-value-1"


def test_log_lines_are_read_only(staff_client, rows):
    assert staff_client.get(reverse("admin:logs_logline_add")).status_code == 403
    url = reverse("admin:logs_logline_change", args=[rows["logline"].pk])
    staff_client.post(url, {"text": "tampered"})
    rows["logline"].refresh_from_db()
    assert rows["logline"].text == "x"
