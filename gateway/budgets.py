"""Budgets: what has been spent against each limit, and whether one is reached.

Spent is metered model cost (the ModelCall rows the gateway wrote); sandbox time is shown
beside it but not counted (docs/budgets.md says why). Limits: the agent's per run, per day
and per month, and its owner's per day and per month. Day and month are calendar periods in
the studio's TIME_ZONE. A limit is reached when spent >= limit: execute is refused, and so is
every further model call. A call already under way when its run crosses a limit completes,
so a run can overshoot by what its last call cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from gateway.models import ModelCall, UsageLimit
from studio.errors import QuotaExceeded

FOUR = Decimal("0.0001")


@dataclass(frozen=True)
class Limit:
    """One limit and what has been spent against it in its period."""

    key: str  # "agent.usd_per_run", "agent.usd_per_day", …, "user.usd_per_month"
    label: str
    limit_usd: Decimal | None
    spent_usd: Decimal

    @property
    def remaining_usd(self) -> Decimal | None:
        return None if self.limit_usd is None else max(Decimal(0), self.limit_usd - self.spent_usd)

    @property
    def reached(self) -> bool:
        return self.limit_usd is not None and self.spent_usd >= self.limit_usd

    @property
    def message(self) -> str:
        return (
            f"Budget reached: {self.label}, spent ${_usd(self.spent_usd)} "
            f"of ${_usd(self.limit_usd or 0)}"
        )


def _usd(value) -> str:
    return str(Decimal(value).quantize(FOUR))


def period_starts(now: datetime | None = None) -> tuple[datetime, datetime]:
    """The start of today and of this month in the studio's TIME_ZONE (aware datetimes)."""
    local = timezone.localtime(now or timezone.now())
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return day, day.replace(day=1)


def _spent(**filters) -> Decimal:
    total = ModelCall.objects.filter(**filters).aggregate(usd=Sum("cost_usd"))["usd"]
    return Decimal(total or 0)


def agent_limits(*, agent, session=None, now=None, only_set: bool = False) -> list[Limit]:
    """The agent's limits with what is spent against each: per run (for `session`, when
    given), today, this month. With `only_set`, limits that are not set are left out (and
    nothing is summed for them)."""
    day, month = period_starts(now)
    wanted = [
        ("agent.usd_per_run", "the agent's per-run budget", agent.budget_usd_per_run, None),
        ("agent.usd_per_day", "the agent's daily budget", agent.budget_usd_per_day, day),
        ("agent.usd_per_month", "the agent's monthly budget", agent.budget_usd_per_month, month),
    ]
    limits = []
    for key, label, limit, since in wanted:
        if only_set and limit is None:
            continue
        if since is None:
            if session is None:
                continue
            spent = _spent(session_id=session.pk)
        else:
            spent = _spent(agent_id=agent.pk, created_at__gte=since)
        limits.append(Limit(key, label, limit, spent))
    return limits


def user_limit_row(user_id) -> UsageLimit | None:
    return UsageLimit.objects.filter(user_id=user_id).first()


def user_limits(*, user_id, now=None, only_set: bool = False, row=None) -> list[Limit]:
    """The user's own limits (across all their agents) with what is spent today and this
    month."""
    row = row if row is not None else user_limit_row(user_id)
    day, month = period_starts(now)
    wanted = [
        ("user.usd_per_day", "your daily limit", row.usd_per_day if row else None, day),
        ("user.usd_per_month", "your monthly limit", row.usd_per_month if row else None, month),
    ]
    return [
        Limit(key, label, limit, _spent(user_id=user_id, created_at__gte=since))
        for key, label, limit, since in wanted
        if not (only_set and limit is None)
    ]


def budget_reached(*, agent, session=None, now=None) -> Limit | None:
    """The first limit that is reached for a run of `agent` (`session`: the run, for its
    per-run budget), or None. Sums only for the limits that are set."""
    for limit in agent_limits(agent=agent, session=session, now=now, only_set=True):
        if limit.reached:
            return limit
    for limit in user_limits(user_id=agent.owner_id, now=now, only_set=True):
        if limit.reached:
            return limit
    return None


def budget_enforce(*, agent) -> None:
    """QuotaExceeded (429) naming the limit and the amount spent when a new run of `agent`
    would start with a limit already reached."""
    limit = budget_reached(agent=agent)
    if limit is not None:
        raise QuotaExceeded(
            limit.message,
            code="BudgetReached",
            details={
                "limit": limit.key,
                "limit_usd": _usd(limit.limit_usd),
                "spent_usd": _usd(limit.spent_usd),
            },
        )
