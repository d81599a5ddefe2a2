"""Reads for pages and the API: what each agent and user has spent against their limits."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Count, OuterRef, Q, Subquery, Sum

from agents.models import Agent, Session
from gateway.budgets import Limit, period_starts, usd_sum, user_limits
from gateway.models import ModelCall

MICRO = Decimal("0.000001")


def budget_document(limits: list[Limit]) -> dict:
    """{"limits", "spent", "remaining"}, each keyed usd_per_run / usd_per_day / usd_per_month
    (USD as strings; a limit that is not set, and its remaining, are null)."""
    doc: dict = {"limits": {}, "spent": {}, "remaining": {}}
    for limit in limits:
        name = limit.key.split(".", 1)[1]
        doc["limits"][name] = None if limit.limit_usd is None else str(limit.limit_usd)
        doc["spent"][name] = str(limit.spent_usd.quantize(MICRO))
        remaining = limit.remaining_usd
        doc["remaining"][name] = None if remaining is None else str(remaining.quantize(MICRO))
    return doc


def agent_budgets(agent_ids, *, now=None) -> dict:
    """{agent_id: budget_document} for the agent's limits: per run (spent = its latest run),
    today and this month. Three queries whatever the number of agents."""
    agent_ids = list(agent_ids)
    day, month = period_starts(now)
    agents = Agent.objects.filter(pk__in=agent_ids).annotate(
        latest_run=Subquery(
            Session.objects.filter(agent_id=OuterRef("pk")).order_by("-created_at").values("pk")[:1]
        )
    )
    agents = {a.pk: a for a in agents}
    periods = {
        row["agent_id"]: row
        for row in ModelCall.objects.filter(agent_id__in=agent_ids, created_at__gte=month)
        .values("agent_id")
        .annotate(month=Sum("cost_usd"), day=Sum("cost_usd", filter=Q(created_at__gte=day)))
    }
    runs = {
        row["session_id"]: row["usd"]
        for row in ModelCall.objects.filter(
            session_id__in=[a.latest_run for a in agents.values() if a.latest_run]
        )
        .values("session_id")
        .annotate(usd=Sum("cost_usd"))
    }
    documents = {}
    for agent_id in agent_ids:
        agent = agents.get(agent_id)
        if agent is None:
            continue
        row = periods.get(agent_id, {})
        documents[agent_id] = budget_document(
            [
                Limit(
                    "agent.usd_per_run",
                    "",
                    agent.budget_usd_per_run,
                    _d(runs.get(agent.latest_run)),
                ),
                Limit("agent.usd_per_day", "", agent.budget_usd_per_day, _d(row.get("day"))),
                Limit("agent.usd_per_month", "", agent.budget_usd_per_month, _d(row.get("month"))),
            ]
        )
    return documents


def user_budget(*, user_id, now=None) -> dict:
    """budget_document for the user's own limits (usd_per_day, usd_per_month)."""
    return budget_document(user_limits(user_id=user_id, now=now))


def _d(value) -> Decimal:
    return usd_sum(value)


def session_metered(*, session_id) -> tuple[Decimal, dict]:
    """A session's model cost and usage as its calls add up (the Messages API's names for
    the counts). Summed from the calls each time, so the session's figures are always the
    metered ones, whatever was in the row before."""
    sums = ModelCall.objects.filter(session_id=session_id).aggregate(
        cost=Sum("cost_usd"),
        calls=Count("id"),
        input_tokens=Sum("input_tokens"),
        output_tokens=Sum("output_tokens"),
        cache_creation_input_tokens=Sum("cache_write_tokens"),
        cache_read_input_tokens=Sum("cache_read_tokens"),
    )
    usage = {key: int(sums[key] or 0) for key in USAGE_KEYS}
    usage["model_calls"] = sums["calls"]
    return usd_sum(sums["cost"]), usage


USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)
