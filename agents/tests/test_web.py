"""The pages through the Django test client: sign-in, ownership, validation, secrets."""

from __future__ import annotations

import pytest
from django.test import Client

from agents.models import Agent, Secret, Session

pytestmark = pytest.mark.django_db

SECRET_VALUE = "sk-live-do-not-show-7f3a9c"


@pytest.fixture
def web(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def form(**fields) -> dict:
    data = {
        "name": "researcher",
        "description": "",
        "system_prompt": "Be brief.",
        "model": "",
        "permission_mode": "bypassPermissions",
        "sandbox_backend": "",
        "max_turns": "50",
        "timeout_seconds": "1800",
        "allowed_tools": ["Read", "Bash"],
        "env_text": "",
    }
    data.update(fields)
    return data


@pytest.mark.parametrize(
    "path",
    ["/", "/agents/new/", "/agents/{agent}/", "/agents/{agent}/edit/", "/sessions/{session}/"],
)
def test_anonymous_visitors_are_sent_to_login(client, make_session, path):
    session = make_session()
    url = path.format(agent=session.agent_id, session=session.pk)
    res = client.get(url)
    assert res.status_code == 302
    assert res["Location"].startswith("/login/?next=")


def test_login_page_has_username_and_password_fields(client):
    res = client.get("/login/")
    assert res.status_code == 200
    html = res.content.decode()
    assert 'name="username"' in html and 'name="password"' in html


def test_signing_in_then_out(client, user):
    res = client.post("/login/", {"username": "alice", "password": "pw-for-tests-1"})
    assert res.status_code == 302 and res["Location"] == "/"
    assert client.get("/").status_code == 200
    assert client.post("/logout/").status_code == 302
    assert client.get("/").status_code == 302


@pytest.mark.parametrize(
    "path", ["/agents/{agent}/", "/agents/{agent}/edit/", "/sessions/{session}/"]
)
def test_another_users_objects_are_a_404_page(web, other_user, make_agent, path):
    theirs = make_agent(owner=other_user, name="not-yours")
    session = Session.objects.create(agent=theirs, prompt="secret plans")
    res = web.get(path.format(agent=theirs.pk, session=session.pk))
    assert res.status_code == 404
    html = res.content.decode()
    assert "Not found" in html and "not-yours" not in html and "secret plans" not in html


def test_another_users_agent_cannot_be_edited_or_deleted(web, other_user, make_agent):
    theirs = make_agent(owner=other_user, name="not-yours")
    assert web.post(f"/agents/{theirs.pk}/edit/", form(name="taken")).status_code == 404
    assert web.post(f"/agents/{theirs.pk}/delete/").status_code == 404
    assert Agent.objects.get(pk=theirs.pk).name == "not-yours"


def test_the_list_shows_only_the_users_agents_with_status_and_cost(web, make_agent, other_user):
    mine = make_agent(name="mine")
    make_agent(owner=other_user, name="theirs")
    Session.objects.create(agent=mine, prompt="a", status="completed", total_cost_usd="0.25")
    Session.objects.create(agent=mine, prompt="b", status="running", total_cost_usd="0.5")
    html = web.get("/").content.decode()
    assert "mine" in html and "theirs" not in html
    assert "badge-running" in html
    assert "$0.7500" in html
    # htmx polls the rows alone
    rows = web.get("/", HTTP_HX_REQUEST="true").content.decode()
    assert "<table" not in rows and "mine" in rows


def test_creating_an_agent_with_a_skill_and_a_secret(web, user):
    data = form(
        skill_name=["greet"],
        skill_description=["Say hello"],
        skill_body=["# Greet"],
        new_secret_name=["API_TOKEN"],
        new_secret_value=[SECRET_VALUE],
        env_text="LOG_LEVEL=info\n",
    )
    res = web.post("/agents/new/", data)
    assert res.status_code == 302, res.content.decode()[:2000]
    agent = Agent.objects.get(owner=user)
    assert res["Location"] == f"/agents/{agent.pk}/"
    assert agent.allowed_tools == ["Read", "Bash"]
    assert agent.env == {"LOG_LEVEL": "info"}
    assert [s.name for s in agent.skills.all()] == ["greet"]
    assert Secret.objects.get(agent=agent).reveal() == SECRET_VALUE


def test_validation_errors_are_rendered_with_the_apis_messages(web):
    data = form(
        name="  ",
        max_turns="0",
        allowed_tools=["Read", "Teleport"],
        skill_name=["Not A Slug", "dup"],
        skill_description=["d", ""],
        skill_body=["b", "b"],
        new_secret_name=["ANTHROPIC_API_KEY"],
        new_secret_value=[SECRET_VALUE],
        env_text="no equals sign",
    )
    res = web.post("/agents/new/", data)
    assert res.status_code == 400
    html = res.content.decode()
    assert "This field may not be blank." in html
    assert "greater than or equal to 1" in html
    assert "Teleport" in html and "is not a valid choice" in html
    assert "slug" in html.lower()
    assert "reserved for the studio" in html
    assert "Line 1: write NAME=value." in html
    assert SECRET_VALUE not in html  # a typed secret is never sent back
    assert not Agent.objects.exists()


def test_secret_values_are_never_rendered(web, make_agent):
    agent = make_agent(name="keeper")
    secret = Secret(agent=agent, name="API_TOKEN")
    secret.set_value(SECRET_VALUE)
    secret.save()
    for path in ("/", f"/agents/{agent.pk}/", f"/agents/{agent.pk}/edit/"):
        html = web.get(path).content.decode()
        assert SECRET_VALUE not in html, path
        assert secret.encrypted_value not in html, path
    assert "API_TOKEN" in web.get(f"/agents/{agent.pk}/edit/").content.decode()


def test_secrets_keep_replace_and_remove(web, make_agent):
    agent = make_agent(name="keeper")
    for name in ("KEEP_ME", "REPLACE_ME", "REMOVE_ME"):
        s = Secret(agent=agent, name=name)
        s.set_value(f"old-{name}")
        s.save()
    data = form(
        name="keeper",
        **{
            "secret_action:KEEP_ME": "keep",
            "secret_action:REPLACE_ME": "replace",
            "secret_value:REPLACE_ME": "new-value",
            "secret_action:REMOVE_ME": "remove",
        },
    )
    res = web.post(f"/agents/{agent.pk}/edit/", data)
    assert res.status_code == 302, res.content.decode()[:2000]
    values = {s.name: s.reveal() for s in Secret.objects.filter(agent=agent)}
    assert values == {"KEEP_ME": "old-KEEP_ME", "REPLACE_ME": "new-value"}


def test_replacing_a_secret_with_nothing_is_an_error(web, make_agent):
    agent = make_agent(name="keeper")
    s = Secret(agent=agent, name="TOKEN")
    s.set_value("old")
    s.save()
    data = form(name="keeper", **{"secret_action:TOKEN": "replace", "secret_value:TOKEN": ""})
    res = web.post(f"/agents/{agent.pk}/edit/", data)
    assert res.status_code == 400
    assert "may not be blank" in res.content.decode()
    assert Secret.objects.get(agent=agent).reveal() == "old"


def test_the_edit_form_offers_the_bundled_web_scraping_skill(web, make_agent):
    agent = make_agent()
    html = web.get(f"/agents/{agent.pk}/edit/").content.decode()
    assert 'id="add-example-skill"' in html
    assert '"name": "web-scraping"' in html


def test_deleting_an_agent_with_a_live_sandbox_deletes_both(web, make_agent):
    # That the sandbox is killed too is proved end to end in sandboxes/tests/test_lifecycle.py.
    from sandboxes.models import Sandbox

    agent = make_agent()
    Sandbox.objects.create(agent=agent, backend="local", status="ready")
    assert web.post(f"/agents/{agent.pk}/delete/").status_code == 302
    assert not Agent.objects.filter(pk=agent.pk).exists()
    assert not Sandbox.objects.exists()


def test_the_terminal_page_does_not_render_stored_lines(web, make_session):
    from logs.models import LogLine

    session = make_session(last_seq=3)
    for seq in (1, 2, 3):
        LogLine.objects.create(
            session=session, seq=seq, kind="stdout", text=f"line-{seq}-text", ts=session.created_at
        )
    html = web.get(f"/sessions/{session.pk}/").content.decode()
    assert "line-1-text" not in html  # the script loads the tail through the API
    assert f'"ws": "/ws/sessions/{session.pk}/"' in html
    assert '"lastSeq": 3' in html
    assert "vendor/xterm/xterm.js" in html


def test_the_agent_page_lists_sessions_and_config(web, make_agent):
    agent = make_agent(name="runner")
    Session.objects.create(agent=agent, prompt="first prompt", claude_session_id="abc")
    html = web.get(f"/agents/{agent.pk}/").content.decode()
    assert "first prompt" in html
    assert f'"ws": "/ws/agents/{agent.pk}/"' in html
    assert '"resumeId": "' in html
