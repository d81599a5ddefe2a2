"""{% agent_budget agent as budget %}: the agent page's budget card, from the one selector
the API uses (limits, spent and remaining per run, today and this month)."""

from __future__ import annotations

from django import template

from gateway.selectors import agent_budgets

register = template.Library()

PERIODS = (
    ("usd_per_run", "Per run", "latest run"),
    ("usd_per_day", "Per day", "today"),
    ("usd_per_month", "Per month", "this month"),
)


@register.simple_tag
def agent_budget(agent) -> list[dict]:
    """One row per limit: label, when, limit (None: no limit), spent, remaining."""
    document = agent_budgets([agent.pk])[agent.pk]
    return [
        {
            "key": key,
            "label": label,
            "when": when,
            "limit": document["limits"][key],
            "spent": document["spent"][key],
            "remaining": document["remaining"][key],
        }
        for key, label, when in PERIODS
    ]
