"""Sandboxes on E2B (the double) through the studio: kept alive while used, paused when idle,
billed as E2B bills, refused clearly, reconciled per install."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from sandboxes import pricing
from sandboxes.backends import override_backend
from sandboxes.backends.base import BackendError, CreateSpec
from sandboxes.backends.e2b import E2BBackend
from sandboxes.models import Sandbox
from sandboxes.selectors import costs_by_agent
from sandboxes.services.lifecycle import sandboxes_reap, sandboxes_reconcile
from sandboxes.tests.conftest import create_agent
from sandboxes.tests.flow import deploy_ready, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def exec_(api, agent_id, command):
    res = api.post(f"/api/agents/{agent_id}/sandbox/exec", {"command": command}, format="json")
    assert res.status_code == 200, res.content
    return res.json()


def test_a_sandbox_kept_busy_past_its_create_time_timeout_stays_alive(
    live_studio, api, e2b, e2b_double, settings
):
    settings.E2B_KEEPALIVE_SECONDS = 0  # every activity extends (throttling is tested below)
    agent_id = create_agent(api, timeout_seconds=600)
    external_id = deploy_ready(api, agent_id)["external_id"]
    double_sandbox = e2b_double.sandboxes[external_id]
    double_sandbox.end_at = time.time() + 5  # E2B would kill it five seconds from now
    busy_until = time.time() + 9

    while time.time() < busy_until:
        assert exec_(api, agent_id, "echo alive")["stdout"] == "alive\n"
        time.sleep(0.5)

    assert external_id in e2b_double.sandboxes
    assert double_sandbox.end_at - time.time() == pytest.approx(600 + 120, abs=10)
    assert Sandbox.objects.get(external_id=external_id).status == "ready"


def test_keep_alive_asks_the_provider_once_per_period(live_studio, api, e2b, e2b_double, settings):
    settings.E2B_KEEPALIVE_SECONDS = 300
    agent_id = create_agent(api)
    external_id = deploy_ready(api, agent_id)["external_id"]
    exec_(api, agent_id, "true")
    first = Sandbox.objects.get(external_id=external_id).provider_timeout_at
    double_sandbox = e2b_double.sandboxes[external_id]
    wait_for(lambda: double_sandbox.end_at - time.time() > 1800, what="the first extension")
    double_sandbox.end_at = time.time() + 1000
    exec_(api, agent_id, "true")
    time.sleep(0.5)  # room for an extension that should not happen

    assert first is not None
    assert Sandbox.objects.get(external_id=external_id).provider_timeout_at == first
    assert e2b_double.sandboxes[external_id].end_at - time.time() == pytest.approx(1000, abs=5)


def test_an_exec_longer_than_the_idle_timeout_is_covered_before_it_starts(
    live_studio, api, e2b, e2b_double, settings
):
    settings.E2B_KEEPALIVE_SECONDS = 300
    agent_id = create_agent(api, timeout_seconds=60)
    external_id = deploy_ready(api, agent_id)["external_id"]
    res = api.post(
        f"/api/agents/{agent_id}/sandbox/exec",
        {"command": "true", "timeout": 300_000},
        format="json",
    )
    assert res.status_code == 200, res.content
    double_sandbox = e2b_double.sandboxes[external_id]

    # 300 s of command plus the slack, asked for before the command ran.
    wait_for(lambda: double_sandbox.end_at - time.time() > 400, timeout=5, what="extension")
    assert double_sandbox.end_at - time.time() == pytest.approx(300 + 120, abs=10)


def test_a_new_sandbox_outlives_the_studios_idle_expiry_at_the_provider(
    live_studio, api, e2b, e2b_double
):
    agent_id = create_agent(api, timeout_seconds=60)
    deployment = deploy_ready(api, agent_id)
    double_sandbox = e2b_double.sandboxes[deployment["external_id"]]

    assert double_sandbox.end_at - double_sandbox.started_at == pytest.approx(180, abs=1)


def test_an_idle_sandbox_pauses_and_the_next_use_resumes_it_with_its_files(
    live_studio, api, e2b, e2b_double
):
    agent_id = create_agent(api)
    sandbox_id = deploy_ready(api, agent_id)["id"]
    written = api.post(
        f"/api/agents/{agent_id}/sandbox/files",
        {"files": [{"path": "/workspace/notes.txt", "content": "kept"}]},
        format="json",
    )
    assert written.status_code == 200, written.content
    Sandbox.objects.filter(pk=sandbox_id).update(expires_at=timezone.now() - timedelta(seconds=1))

    sandboxes_reap()

    row = Sandbox.objects.get(pk=sandbox_id)
    assert row.status == "paused" and row.paused_at is not None
    assert e2b_double.sandboxes[row.external_id].state == "paused"
    assert api.get(f"/api/agents/{agent_id}/sandbox").json()["deployment"]["status"] == "paused"
    time.sleep(1)

    assert exec_(api, agent_id, "cat /workspace/notes.txt")["stdout"] == "kept"
    row.refresh_from_db()
    assert row.status == "ready" and row.paused_at is None
    assert row.paused_seconds >= 1
    assert e2b_double.sandboxes[row.external_id].state == "running"


def test_a_paused_sandbox_is_still_reaped_at_its_maximum_age(live_studio, api, e2b, e2b_double):
    agent_id = create_agent(api)
    sandbox_id = deploy_ready(api, agent_id)["id"]
    Sandbox.objects.filter(pk=sandbox_id).update(expires_at=timezone.now())
    sandboxes_reap()
    assert Sandbox.objects.get(pk=sandbox_id).status == "paused"
    Sandbox.objects.filter(pk=sandbox_id).update(created_at=timezone.now() - timedelta(days=2))

    sandboxes_reap()

    row = Sandbox.objects.get(pk=sandbox_id)
    assert row.status == "expired"
    assert row.external_id not in e2b_double.sandboxes


def test_cost_is_size_times_e2b_prices_over_unpaused_seconds(make_agent):
    agent = make_agent()
    now = timezone.now()
    rate = pricing.rate_per_second(backend="e2b", vcpus=2, memory_mb=2048)
    box = Sandbox.objects.create(
        agent=agent, backend="e2b", status="stopped", vcpus=2, memory_mb=2048, cost_per_second=rate
    )
    Sandbox.objects.filter(pk=box.pk).update(
        created_at=now - timedelta(seconds=100), stopped_at=now, paused_seconds=30
    )
    box.refresh_from_db()

    assert rate == Decimal("0.00003700")  # 2 × $0.000014 + 2 GiB × $0.0000045
    assert box.cost_usd == Decimal("0.002590")  # 70 unpaused seconds
    assert costs_by_agent([agent.pk])[agent.pk].sandbox_usd == Decimal("0.002590")


def test_a_sandbox_paused_now_is_not_billed_for_the_pause(make_agent):
    agent = make_agent()
    now = timezone.now()
    box = Sandbox.objects.create(
        agent=agent, backend="e2b", status="paused", cost_per_second=Decimal("0.0001")
    )
    Sandbox.objects.filter(pk=box.pk).update(
        created_at=now - timedelta(seconds=50), paused_at=now - timedelta(seconds=40)
    )
    box.refresh_from_db()

    assert pricing.billed_seconds(box, now=now) == pytest.approx(10)


def test_local_sandboxes_cost_nothing_unless_priced(settings):
    assert pricing.rate_per_second(backend="local", vcpus=None, memory_mb=None) == 0
    settings.SANDBOX_PRICES = {**settings.SANDBOX_PRICES, "local": {"second": 0.00001}}
    assert pricing.rate_per_second(backend="local", vcpus=None, memory_mb=None) == Decimal(
        "0.00001000"
    )


def test_the_agents_page_shows_the_apis_cost(client, user, make_agent):
    agent = make_agent()
    box = Sandbox.objects.create(
        agent=agent, backend="e2b", status="stopped", cost_per_second=Decimal("0.001")
    )
    now = timezone.now()
    Sandbox.objects.filter(pk=box.pk).update(created_at=now - timedelta(seconds=10), stopped_at=now)
    client.force_login(user)

    page = client.get("/").content.decode()

    assert "$0.0100" in page


def test_a_deploy_rate_comes_from_the_sandbox_size(live_studio, api, e2b):
    agent_id = create_agent(api)
    deployment = deploy_ready(api, agent_id)
    row = Sandbox.objects.get(pk=deployment["id"])

    # The double's template is 2 vCPUs and 512 MiB.
    assert (row.vcpus, row.memory_mb) == (2, 512)
    assert row.cost_per_second == Decimal("0.00003025")


def test_it_refuses_to_deploy_to_e2b_with_a_studio_url_sandboxes_cannot_reach(
    api, e2b, e2b_double, settings
):
    cloud = E2BBackend(
        **(e2b_double.backend_options() | {"studio_on_sandbox_network": False}),
        template_id="agent-runtime",
        install_id=settings.STUDIO_INSTALL_ID,
    )
    override_backend("e2b", cloud)
    settings.BACKEND_API_URL = "http://127.0.0.1:8000"
    agent_id = create_agent(api)

    res = api.post(f"/api/agents/{agent_id}/deploy", {}, format="json")

    assert res.status_code == 409, res.content
    assert res.json()["error"] == "BackendUrlUnreachable"
    assert "Set BACKEND_API_URL" in res.json()["message"]
    assert not Sandbox.objects.exists()


def test_it_refuses_to_deploy_to_e2b_without_a_key(api, settings):
    settings.SANDBOX_BACKEND = "e2b"
    settings.E2B_API_KEY = ""
    agent_id = create_agent(api)

    res = api.post(f"/api/agents/{agent_id}/deploy", {}, format="json")

    assert res.status_code == 502, res.content
    assert res.json()["message"].startswith("E2B_API_KEY is not set")
    assert not Sandbox.objects.exists()


def test_it_answers_429_past_the_e2b_plans_concurrent_sandboxes(api, e2b, settings, make_agent):
    settings.E2B_MAX_SANDBOXES = 1
    Sandbox.objects.create(agent=make_agent(name="other"), backend="e2b", status="ready")
    agent_id = create_agent(api)

    res = api.post(f"/api/agents/{agent_id}/deploy", {}, format="json")

    assert res.status_code == 429, res.content
    assert "maximum number of concurrent E2B sandboxes (1)" in res.json()["message"]


class _KillFails(E2BBackend):
    """An E2B backend whose kill of one sandbox fails (an E2B outage for that call)."""

    broken: str = ""

    def kill(self, external_id: str) -> None:
        if external_id == self.broken:
            raise BackendError("E2B could not kill the sandbox: 500")
        super().kill(external_id)


def test_reconcile_goes_on_past_a_failing_kill_and_spares_other_installs(e2b, e2b_double, settings):
    ours = _KillFails(
        **e2b_double.backend_options(), template_id="bare", install_id=settings.STUDIO_INSTALL_ID
    )
    theirs = E2BBackend(**e2b_double.backend_options(), template_id="bare", install_id="another")
    override_backend("e2b", ours)

    def orphan(backend):
        spec = CreateSpec(sandbox_id=str(uuid.uuid4()), agent_id="a", runtime_token="t")
        return backend.create(spec).external_id

    stuck, gone, foreign = orphan(ours), orphan(ours), orphan(theirs)
    ours.broken = stuck

    assert sandboxes_reconcile()["killed"] == 1
    assert gone not in e2b_double.sandboxes
    assert stuck in e2b_double.sandboxes
    assert foreign in e2b_double.sandboxes


def _install_id(**env) -> str:
    production = {
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/unused",
        "SECRET_KEY": "x" * 60,
        "INTERNAL_API_KEY": "internal-key-one",
        "DJANGO_SETTINGS_MODULE": "studio.settings",
    }
    clean = {k: v for k, v in os.environ.items() if k not in ("STUDIO_INSTALL_ID", "REDIS_URL")}
    out = subprocess.run(
        [sys.executable, "-c", "from studio import settings; print(settings.STUDIO_INSTALL_ID)"],
        env=clean | production | env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_production_derives_a_stable_install_id_from_its_own_key():
    first, again = _install_id(), _install_id()
    other = _install_id(INTERNAL_API_KEY="internal-key-two")

    assert first == again and len(first) == 16 and first != "default"
    assert other != first
    assert "internal-key-one" not in first
    assert _install_id(STUDIO_INSTALL_ID="prod-eu") == "prod-eu"
