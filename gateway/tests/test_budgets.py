"""Budgets count metered model cost in calendar periods of the studio's TIME_ZONE, and show
spent and remaining in the API, the agent page and admin."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from gateway.budgets import budget_reached, period_starts
from gateway.models import ModelCall, UsageLimit
from studio.errors import QuotaExceeded

pytestmark = pytest.mark.django_db


@pytest.fixture
def spend(make_session):
    """spend(agent, usd, at=datetime): one metered call of `usd` for a session of `agent`."""

    def make(agent, usd, at=None, session=None):
        session = session or make_session(agent_=agent, status="completed")
        return ModelCall.objects.create(
            session=session,
            agent=agent,
            user=agent.owner,
            path="v1/messages",
            model="claude-sonnet-4-5",
            status=200,
            cost_usd=Decimal(usd),
            created_at=at or datetime.now(tz=ZoneInfo("UTC")),
        )

    return make


def test_days_and_months_are_calendar_periods_in_the_studios_time_zone(settings):
    settings.TIME_ZONE = "America/New_York"
    now = datetime(2026, 3, 1, 3, 30, tzinfo=ZoneInfo("UTC"))  # Feb 28, 22:30 in New York
    day, month = period_starts(now)
    assert day == datetime(2026, 2, 28, tzinfo=ZoneInfo("America/New_York"))
    assert month == datetime(2026, 2, 1, tzinfo=ZoneInfo("America/New_York"))


def test_yesterdays_spend_does_not_count_against_today(agent, spend):
    agent.budget_usd_per_day = Decimal("1")
    agent.save()
    now = datetime.now(tz=ZoneInfo("UTC"))
    day, _ = period_starts(now)
    spend(agent, "5", at=day - timedelta(seconds=1))
    assert budget_reached(agent=agent, now=now) is None
    spend(agent, "1", at=day)
    limit = budget_reached(agent=agent, now=now)
    assert limit.key == "agent.usd_per_day"
    assert limit.message == "Budget reached: the agent's daily budget, spent $1.0000 of $1.0000"


def test_a_monthly_limit_counts_the_whole_month(agent, spend):
    agent.budget_usd_per_month = Decimal("2")
    agent.save()
    now = datetime.now(tz=ZoneInfo("UTC"))
    _, month = period_starts(now)
    spend(agent, "1.5", at=month)
    assert budget_reached(agent=agent, now=now) is None
    spend(agent, "0.5", at=now)
    assert budget_reached(agent=agent, now=now).key == "agent.usd_per_month"


def test_a_users_limit_counts_every_agent_they_own(make_agent, user, spend):
    UsageLimit.objects.create(user=user, usd_per_month=Decimal("1"))
    first, second = make_agent(), make_agent(name="second")
    spend(first, "0.6")
    assert budget_reached(agent=second) is None
    spend(second, "0.4")
    limit = budget_reached(agent=first)
    assert (limit.key, limit.label) == ("user.usd_per_month", "your monthly limit")


def test_another_users_spend_is_not_counted(make_agent, other_user, user, spend):
    UsageLimit.objects.create(user=user, usd_per_day=Decimal("1"))
    spend(make_agent(owner=other_user), "50")
    assert budget_reached(agent=make_agent()) is None


def test_execute_is_refused_with_429_naming_the_limit_and_the_spend(api, agent, spend, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    agent.budget_usd_per_month = Decimal("0.5")
    agent.save()
    spend(agent, "0.75")
    res = api.post(f"/api/agents/{agent.pk}/execute", {"prompt": "hi"}, format="json")
    assert res.status_code == 429
    assert res.json() == {
        "error": "BudgetReached",
        "message": "Budget reached: the agent's monthly budget, spent $0.7500 of $0.5000",
        "details": {"limit": "agent.usd_per_month", "limit_usd": "0.5000", "spent_usd": "0.7500"},
    }
    assert agent.sessions.count() == 1  # the one that spent it: no new session, no deploy
    assert not agent.sandboxes.exists()


def test_budget_enforce_lets_a_run_start_below_every_limit(agent, spend):
    from gateway.budgets import budget_enforce

    agent.budget_usd_per_day = Decimal("1")
    agent.save()
    spend(agent, "0.99")
    budget_enforce(agent=agent)
    spend(agent, "0.01")
    with pytest.raises(QuotaExceeded):
        budget_enforce(agent=agent)


def test_usage_shows_spent_and_remaining_for_the_user_and_each_agent(api, agent, user, spend):
    UsageLimit.objects.create(user=user, usd_per_day=Decimal("3"))
    agent.budget_usd_per_run = Decimal("1")
    agent.save()
    call = spend(agent, "0.25")
    spend(agent, "0.5", session=call.session)
    body = api.get("/api/usage/").json()
    assert body["limits"] == {"usd_per_day": "3.0000", "usd_per_month": None}
    assert body["spent"] == {"usd_per_day": "0.750000", "usd_per_month": "0.750000"}
    assert body["remaining"] == {"usd_per_day": "2.250000", "usd_per_month": None}
    (row,) = body["agents"]
    assert row["budget"]["limits"]["usd_per_run"] == "1.0000"
    assert row["budget"]["spent"]["usd_per_run"] == "0.750000"
    assert row["budget"]["remaining"]["usd_per_run"] == "0.250000"
    assert row["budget"]["remaining"]["usd_per_day"] is None
    agent_body = api.get(f"/api/agents/{agent.pk}/").json()
    assert agent_body["budget"] == row["budget"]
    listed = api.get("/api/agents/").json()["results"][0]
    assert listed["budget"] == row["budget"]


def test_the_agent_page_shows_spent_and_remaining(user, agent, spend):
    agent.budget_usd_per_day = Decimal("2")
    agent.save()
    spend(agent, "0.5")
    client = Client()
    client.force_login(user)
    page = client.get(f"/agents/{agent.pk}/").content.decode()
    assert 'id="budget-card"' in page
    assert '$0.5000 today of $2.0000 · <span class="">$1.5000 left</span>' in page
    assert "no limit" in page  # per run and per month


def test_a_user_sets_and_clears_their_own_limits(api, user):
    assert api.get("/api/usage/limits").json() == {
        "usd_per_day": None,
        "usd_per_month": None,
        "locked": False,
    }
    res = api.put("/api/usage/limits", {"usd_per_day": "5", "usd_per_month": 50}, format="json")
    assert res.status_code == 200
    assert res.json() == {"usd_per_day": "5.0000", "usd_per_month": "50.0000", "locked": False}
    assert api.put("/api/usage/limits", {"usd_per_month": "20"}, format="json").json() == {
        "usd_per_day": None,
        "usd_per_month": "20.0000",
        "locked": False,
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"usd_per_day": -1}, "usd_per_day"),
        ({"usd_per_day": "NaN"}, "usd_per_day"),
        ({"usd_per_month": "1e30"}, "usd_per_month"),
        ({"usd_per_day": "lots"}, "usd_per_day"),
        ({"locked": False}, "locked"),
        (["usd_per_day"], "JSON object"),
    ],
)
def test_it_refuses_bad_limits_naming_the_field(api, body, field):
    res = api.put("/api/usage/limits", body, format="json")
    assert res.status_code == 400, res.content
    assert field in res.content.decode()


def test_a_limit_an_operator_locked_cannot_be_changed_by_its_user(api, user):
    UsageLimit.objects.create(user=user, usd_per_day=Decimal("1"), locked=True)
    res = api.put("/api/usage/limits", {"usd_per_day": None}, format="json")
    assert res.status_code == 403
    assert UsageLimit.objects.get(user=user).usd_per_day == Decimal("1")
    assert api.get("/api/usage/limits").json()["locked"] is True


def test_limits_need_sign_in():
    assert Client().get("/api/usage/limits").status_code in (401, 403)


def test_an_operator_sets_another_users_limits_in_admin(admin_client, user, agent, spend):
    call = spend(agent, "0.25")
    res = admin_client.post(
        "/admin/gateway/usagelimit/add/",
        {"user": user.pk, "usd_per_day": "1", "usd_per_month": "", "locked": "on"},
    )
    assert res.status_code == 302, res.content.decode()[:2000]
    row = UsageLimit.objects.get(user=user)
    assert (row.usd_per_day, row.usd_per_month, row.locked) == (Decimal("1"), None, True)
    page = admin_client.get(f"/admin/gateway/usagelimit/{row.pk}/change/").content.decode()
    assert "day: $0.250000 of $1.0000 ($0.750000 left)" in page
    assert "month: $0.250000 (no limit)" in page
    for url in (
        "/admin/gateway/usagelimit/",
        "/admin/gateway/modelcall/",
        f"/admin/gateway/modelcall/{call.pk}/change/",
        "/admin/agents/agent/",
    ):
        assert admin_client.get(url).status_code == 200, url
    agent_page = admin_client.get(f"/admin/agents/agent/{agent.pk}/change/").content.decode()
    assert "run: $0.250000 (no limit)" in agent_page
    assert 'name="budget_usd_per_day"' in agent_page
    assert admin_client.get("/admin/gateway/modelcall/add/").status_code == 403
