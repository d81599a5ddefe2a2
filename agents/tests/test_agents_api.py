from __future__ import annotations

import pytest

from agents.models import Agent, Secret, Skill

pytestmark = pytest.mark.django_db

SKILL = {"name": "greet", "description": "Say hello", "body": "# Greet\nSay hello."}


def create(api, **fields):
    body = {"name": "researcher", "system_prompt": "Be brief.", **fields}
    return api.post("/api/agents/", body, format="json")


def test_it_creates_an_agent_with_defaults_skills_and_secrets(api):
    res = create(api, skills=[SKILL], secrets={"GITHUB_TOKEN": "ghp_abcdefghijklmnop"})
    assert res.status_code == 201, res.data
    body = res.json()
    assert body["allowed_tools"] == ["Skill", "Read", "Write", "Edit", "Bash", "Grep", "Glob"]
    assert body["max_turns"] == 50
    assert body["timeout_seconds"] == 1800
    assert body["skills"] == [SKILL]
    assert body["secrets"] == ["GITHUB_TOKEN"]
    assert "ghp_abcdefghijklmnop" not in res.content.decode()
    secret = Secret.objects.get(name="GITHUB_TOKEN")
    assert "ghp_abcdefghijklmnop" not in secret.encrypted_value
    assert secret.reveal() == "ghp_abcdefghijklmnop"
    assert "ghp_" not in repr(secret)


def test_it_lists_only_the_users_own_agents(api, other_api):
    create(api, name="mine")
    create(other_api, name="theirs")
    names = [a["name"] for a in api.get("/api/agents/").json()["results"]]
    assert names == ["mine"]


def test_another_users_agent_is_a_404_for_every_verb(api, other_api):
    agent_id = create(api).json()["id"]
    url = f"/api/agents/{agent_id}/"
    assert other_api.get(url).status_code == 404
    assert other_api.patch(url, {"name": "x"}, format="json").status_code == 404
    assert other_api.put(url, {"name": "x"}, format="json").status_code == 404
    assert other_api.delete(url).status_code == 404
    assert other_api.get(url).json() == {"error": "NotFound", "message": "Agent not found."}
    assert Agent.objects.get(pk=agent_id).name == "researcher"


def test_it_requires_authentication(client):
    res = client.get("/api/agents/")
    assert res.status_code == 401
    assert res.json()["error"] == "NotAuthenticated"


def test_patch_replaces_skills_and_merges_secrets(api):
    agent_id = create(
        api, skills=[SKILL], secrets={"A_KEY": "one-value", "B_KEY": "two-value"}
    ).json()["id"]
    res = api.patch(
        f"/api/agents/{agent_id}/",
        {"skills": [{**SKILL, "name": "other"}], "secrets": {"A_KEY": None, "C_KEY": "three"}},
        format="json",
    )
    assert res.status_code == 200, res.data
    assert [s["name"] for s in res.json()["skills"]] == ["other"]
    assert res.json()["secrets"] == ["B_KEY", "C_KEY"]


def test_patch_without_skills_keeps_them(api):
    agent_id = create(api, skills=[SKILL]).json()["id"]
    res = api.patch(f"/api/agents/{agent_id}/", {"description": "new"}, format="json")
    assert res.json()["skills"] == [SKILL]


def test_delete_removes_the_agent_and_its_rows(api):
    agent_id = create(api, skills=[SKILL], secrets={"A_KEY": "v1234"}).json()["id"]
    assert api.delete(f"/api/agents/{agent_id}/").status_code == 204
    assert not Agent.objects.exists()
    assert not Skill.objects.exists()
    assert not Secret.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"allowed_tools": ["Bash", "Teleport"]}, "allowed_tools"),
        ({"max_turns": 0}, "max_turns"),
        ({"timeout_seconds": 5}, "timeout_seconds"),
        ({"permission_mode": "yolo"}, "permission_mode"),
        ({"name": ""}, "name"),
        ({"system_prompt": "x" * 100_001}, "system_prompt"),
        ({"env": {"1BAD": "x"}}, "env"),
        ({"env": {"ANTHROPIC_API_KEY": "x"}}, "env"),
        ({"secrets": {"bad name": "x"}}, "secrets"),
        ({"sandbox_backend": "docker"}, "sandbox_backend"),
        ({"skills": [SKILL, SKILL]}, "skills"),
        ({"skills": [{**SKILL, "name": "Not A Slug"}]}, "skills"),
    ],
)
def test_it_rejects_invalid_fields_naming_the_field(api, fields, field):
    res = create(api, **fields)
    assert res.status_code == 400
    body = res.json()
    assert body["error"] == "ValidationError"
    assert field in body["details"], body
    assert body["message"].startswith(field)
    assert not Agent.objects.exists()


def test_a_failed_update_saves_nothing(api):
    agent_id = create(api, skills=[SKILL]).json()["id"]
    res = api.patch(
        f"/api/agents/{agent_id}/",
        {"name": "renamed", "skills": [SKILL, SKILL]},
        format="json",
    )
    assert res.status_code == 400
    agent = Agent.objects.get(pk=agent_id)
    assert agent.name == "researcher"
    assert list(agent.skills.values_list("name", flat=True)) == ["greet"]


def test_it_refuses_an_oversized_body_with_413(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    res = create(api, description="x" * 20_000)
    assert res.status_code == 413
    assert res.json()["error"] == "PayloadTooLarge"


def test_malformed_json_is_a_400(api):
    res = api.post("/api/agents/", "{not json", content_type="application/json")
    assert res.status_code == 400
    assert res.json()["error"] == "ValidationError"


def test_list_is_paginated(api):
    for i in range(3):
        create(api, name=f"a{i}")
    body = api.get("/api/agents/?limit=2").json()
    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert body["next"]
