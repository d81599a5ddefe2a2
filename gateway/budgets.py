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
MICRO = Decimal("0.000001")


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
    return usd_sum(total)


def usd_sum(total) -> Decimal:
    """A database SUM of micro-dollar amounts as an exact Decimal (SQLite sums them as
    floats: 0.1 + 0.2 must not come back as 0.30000000000000004, or below a limit)."""
    return Decimal(str(total or 0)).quantize(MICRO)


# Each limit's key and the words a refusal uses for it.
LABELS = {
    "agent.usd_per_run": "the agent's per-run budget",
    "agent.usd_per_day": "the agent's daily budget",
    "agent.usd_per_month": "the agent's monthly budget",
    "user.usd_per_day": "your daily limit",
    "user.usd_per_month": "your monthly limit",
}


def _limit(key: str, limit, *, session_id, agent_id, user_id, day, month) -> Limit:
    """`limit` (None: none) and what is spent against it in its period."""
    scope, period = key.split(".")
    if period == "usd_per_run":
        spent = _spent(session_id=session_id) if session_id else Decimal(0)
    else:
        since = day if period == "usd_per_day" else month
        owner = {"agent_id": agent_id} if scope == "agent" else {"user_id": user_id}
        spent = _spent(**owner, created_at__gte=since)
    return Limit(key, LABELS[key], limit, spent)


def agent_limits(*, agent, session=None, now=None) -> list[Limit]:
    """The agent's limits with what is spent against each: per run (`session`, its run:
    nothing spent without one), today, this month."""
    day, month = period_starts(now)
    scope = {"session_id": session.pk if session else None, "agent_id": agent.pk, "user_id": None}
    return [
        _limit("agent.usd_per_run", agent.budget_usd_per_run, **scope, day=day, month=month),
        _limit("agent.usd_per_day", agent.budget_usd_per_day, **scope, day=day, month=month),
        _limit("agent.usd_per_month", agent.budget_usd_per_month, **scope, day=day, month=month),
    ]


def user_limit_row(user_id) -> UsageLimit | None:
    return UsageLimit.objects.filter(user_id=user_id).first()


def user_limits(*, user_id, now=None, row=None) -> list[Limit]:
    """The user's own limits (across all their agents) with what is spent today and this
    month."""
    row = row if row is not None else user_limit_row(user_id)
    day, month = period_starts(now)
    scope = {"session_id": None, "agent_id": None, "user_id": user_id, "day": day, "month": month}
    return [
        _limit("user.usd_per_day", row.usd_per_day if row else None, **scope),
        _limit("user.usd_per_month", row.usd_per_month if row else None, **scope),
    ]


@dataclass(frozen=True)
class Budgets:
    """The limits that apply to a run of one agent (None: no limit)."""

    agent_id: object
    user_id: int
    per_run: Decimal | None = None
    per_day: Decimal | None = None
    per_month: Decimal | None = None
    user_per_day: Decimal | None = None
    user_per_month: Decimal | None = None

    @classmethod
    def of(cls, agent) -> Budgets:
        row = user_limit_row(agent.owner_id)
        return cls(
            agent_id=agent.pk,
            user_id=agent.owner_id,
            per_run=agent.budget_usd_per_run,
            per_day=agent.budget_usd_per_day,
            per_month=agent.budget_usd_per_month,
            user_per_day=row.usd_per_day if row else None,
            user_per_month=row.usd_per_month if row else None,
        )


def first_reached(budgets: Budgets, *, session_id=None, now=None) -> Limit | None:
    """The first of `budgets` that is reached (`session_id`: the run, for its per-run
    budget), or None. Sums only for the limits that are set."""
    day, month = period_starts(now)
    scope = {
        "session_id": session_id,
        "agent_id": budgets.agent_id,
        "user_id": budgets.user_id,
        "day": day,
        "month": month,
    }
    checks = [
        ("agent.usd_per_run", budgets.per_run),
        ("agent.usd_per_day", budgets.per_day),
        ("agent.usd_per_month", budgets.per_month),
        ("user.usd_per_day", budgets.user_per_day),
        ("user.usd_per_month", budgets.user_per_month),
    ]
    for key, limit in checks:
        if limit is None:
            continue
        found = _limit(key, limit, **scope)
        if found.reached:
            return found
    return None


def budget_reached(*, agent, session=None, now=None) -> Limit | None:
    """The first limit that is reached for a run of `agent` (`session`: the run), or None."""
    return first_reached(
        Budgets.of(agent), session_id=session.pk if session is not None else None, now=now
    )


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
