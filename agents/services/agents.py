"""Writes of agents, their skills and secrets."""

from __future__ import annotations

from django.db import transaction

from agents.models import AGENT_FIELDS, Agent, Secret, Skill


@transaction.atomic
def agent_create(*, owner, data: dict) -> Agent:
    """Create an agent with its skills and secrets, all or nothing."""
    agent = Agent(owner=owner, **{k: data[k] for k in AGENT_FIELDS if k in data})
    agent.full_clean()
    agent.save()
    _replace_skills(agent, data.get("skills", []))
    _apply_secrets(agent, data.get("secrets", {}))
    return agent


@transaction.atomic
def agent_update(*, agent: Agent, data: dict) -> Agent:
    """Update the fields given. `skills`, when given, replaces the list; `secrets` merges
    (a null value removes that secret)."""
    for field in AGENT_FIELDS:
        if field in data:
            setattr(agent, field, data[field])
    agent.full_clean()
    agent.save()
    if "skills" in data:
        _replace_skills(agent, data["skills"])
    if "secrets" in data:
        _apply_secrets(agent, data["secrets"])
    return agent


def agent_delete(*, agent: Agent) -> None:
    """Stop the agent's live sandbox (so nothing keeps running or costing), then delete the
    agent with its skills, secrets, sessions and logs."""
    from sandboxes.services.deploy import live_sandbox
    from sandboxes.services.lifecycle import sandbox_stop

    sandbox = live_sandbox(agent)
    if sandbox is not None:
        sandbox_stop(sandbox=sandbox)
    agent.delete()


def _replace_skills(agent: Agent, skills: list[dict]) -> None:
    agent.skills.all().delete()
    Skill.objects.bulk_create(
        [
            Skill(agent=agent, name=s["name"], description=s["description"], body=s["body"])
            for s in skills
        ]
    )


def _apply_secrets(agent: Agent, secrets: dict[str, str | None]) -> None:
    for name, value in secrets.items():
        if value is None:
            Secret.objects.filter(agent=agent, name=name).delete()
            continue
        secret = Secret.objects.filter(agent=agent, name=name).first() or Secret(
            agent=agent, name=name
        )
        secret.set_value(value)
        secret.save()
