"""The gateway's two writes to the studio's state: who may call the model, and what a call
cost. The HTTP side (gateway/views.py) calls these; nothing else writes ModelCall rows."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from agents.models import FINAL_SESSION_STATUSES, Session
from gateway.budgets import Budgets, first_reached
from gateway.models import ModelCall, UsageLimit
from gateway.pricing import Usage, cost_usd
from gateway.selectors import session_metered
from logs.events import publish_session
from sandboxes.models import FINAL_SANDBOX_STATUSES
from studio import tokens
from studio.errors import Forbidden

log = logging.getLogger(__name__)


class Refused(Exception):
    """The gateway will not forward this call: an Anthropic-shaped error with `status`."""

    def __init__(self, status: int, kind: str, message: str):
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


@dataclass(frozen=True)
class Grant:
    """A call the gateway may forward, and whose run it is metered to."""

    session_id: uuid.UUID
    agent_id: uuid.UUID
    user_id: int


def gateway_grant(*, credential: str) -> Grant:
    """Check a sandbox's model credential and the run's budgets.

    401 (authentication_error) unless it is a credential this studio minted, for a session
    that is not final, in a sandbox that is not stopped, failed or expired; 429
    (rate_limit_error) when one of the run's limits is reached.
    """
    session_id = tokens.model_token_session(credential)
    if session_id is None:
        raise Refused(401, "authentication_error", "This is not a valid model gateway credential.")
    # One query, values only: this runs before every model call.
    rows = Session.objects.filter(pk=session_id).values_list(*GRANT_FIELDS)[:1]
    if not rows:
        raise Refused(401, "authentication_error", "This credential's run has ended.")
    status, sandbox_status, agent_id, user_id, *limits = rows[0]
    if status in FINAL_SESSION_STATUSES:
        raise Refused(401, "authentication_error", "This credential's run has ended.")
    if sandbox_status is None or sandbox_status in FINAL_SANDBOX_STATUSES:
        raise Refused(401, "authentication_error", "This credential's sandbox is stopped.")
    reached = first_reached(Budgets(agent_id, user_id, *limits), session_id=session_id)
    if reached is not None:
        raise Refused(429, "rate_limit_error", reached.message)
    return Grant(session_id=session_id, agent_id=agent_id, user_id=user_id)


GRANT_FIELDS = (
    "status",
    "sandbox__status",
    "agent_id",
    "agent__owner_id",
    "agent__budget_usd_per_run",
    "agent__budget_usd_per_day",
    "agent__budget_usd_per_month",
    "agent__owner__usage_limit__usd_per_day",
    "agent__owner__usage_limit__usd_per_month",
)


def model_call_record(
    *,
    grant: Grant,
    path: str,
    model: str,
    usage: Usage,
    status: int,
    error: str,
    created_at: datetime,
    duration_ms: int,
) -> ModelCall:
    """Store one forwarded call and add its cost and tokens to its session (under the
    session's row lock: the ingest and other calls of the run write the same row), then
    publish the session. What the call cost is the price table applied to the usage the
    upstream reported; an answer without usage (an error) costs nothing."""
    cost = cost_usd(model, usage) if _any_tokens(usage) else Decimal(0)
    with transaction.atomic():
        call = ModelCall.objects.create(
            session_id=grant.session_id,
            agent_id=grant.agent_id,
            user_id=grant.user_id,
            path=path[:200],
            model=model[:100],
            status=status,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cost_usd=cost,
            error=error[:300],
            created_at=created_at,
            duration_ms=max(0, min(duration_ms, 2**31 - 1)),
        )
        if _any_tokens(usage):
            session = Session.objects.select_for_update().get(pk=grant.session_id)
            session.total_cost_usd, session.usage = session_metered(session_id=session.pk)
            session.save(update_fields=["total_cost_usd", "usage"])
            publish_session(session)
    log.info(
        "model call session=%s model=%s status=%s cost=%s ms=%s",
        grant.session_id,
        model,
        status,
        cost,
        duration_ms,
    )
    return call


def _any_tokens(usage: Usage) -> bool:
    return any(
        (usage.input_tokens, usage.output_tokens, usage.cache_write_tokens, usage.cache_read_tokens)
    )


def usage_limit_set(*, user, usd_per_day: Decimal | None, usd_per_month: Decimal | None):
    """Set a user's own daily and monthly limits (None: no limit). Forbidden (403) once an
    operator has locked them in admin."""
    with transaction.atomic():
        # Locked: two saves at once must not both pass the `locked` check on a stale row.
        row, _ = UsageLimit.objects.select_for_update().get_or_create(user=user)
        if row.locked:
            raise Forbidden("Your spending limits are set by an operator; ask them to change them.")
        row.usd_per_day, row.usd_per_month = usd_per_day, usd_per_month
        row.save(update_fields=["usd_per_day", "usd_per_month", "updated_at"])
    return row
