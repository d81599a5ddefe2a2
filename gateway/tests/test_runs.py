"""Real runs through the gateway: the studio (live server + worker), a local bubblewrap
sandbox running the real Claude CLI, and the scripted model as the upstream behind the
gateway. What the studio says a run cost is the price table applied to what the model
reported; budgets stop runs as stated; nothing in the sandbox holds the operator's key."""

from __future__ import annotations

import base64
import codecs
import json
from decimal import Decimal

import pytest

from agent_runtime.render import strip_ansi as plain
from conftest import MODEL_ENV
from gateway.models import ModelCall
from gateway.pricing import cost_usd
from gateway.tests.conftest import scripted_usage
from sandboxes.tests.conftest import create_agent
from sandboxes.tests.flow import all_lines, deploy_ready, session_done
from studio import tokens

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "claude-sonnet-4-5"
# Prices unlike the CLI's own table, so a figure the sandbox computed cannot pass for ours.
PRICES = {MODEL: {"input": 7, "output": 11, "cache_write": 13, "cache_read": 0.5}}
REAL_KEY = MODEL_ENV["ANTHROPIC_API_KEY"]


def two_turns(marker: str, command: str) -> dict:
    return {
        "marker": marker,
        "turns": [
            [
                {"type": "text", "text": "On it."},
                {"type": "tool_use", "name": "Bash", "input": {"command": command}},
            ],
            [{"type": "text", "text": "Done."}],
        ],
    }


@pytest.fixture
def studio(live_studio, scripted_model, settings):
    settings.SANDBOX_BACKEND = "local"
    settings.MODEL_PRICES = PRICES
    return scripted_model


def run(api, agent_id, prompt: str) -> dict:
    res = api.post(f"/api/agents/{agent_id}/execute", {"prompt": prompt}, format="json")
    assert res.status_code == 202, res.content
    return session_done(api, res.json()["session_id"])


def expected_cost(scripted_model, bodies) -> Decimal:
    return sum((cost_usd(MODEL, scripted_usage(scripted_model, b)) for b in bodies), Decimal(0))


def test_a_runs_cost_is_the_price_table_applied_to_the_models_usage(studio, api):
    studio.add_script(two_turns("[[metered]]", "echo metered"))
    agent_id = create_agent(api, model=MODEL)
    session = run(api, agent_id, "[[metered]] go")
    assert session["status"] == "completed", session
    bodies = studio.messages_requests()
    assert len(bodies) == 2
    calls = ModelCall.objects.filter(session_id=session["id"]).order_by("created_at")
    assert [c.status for c in calls] == [200, 200]
    assert [(c.input_tokens, c.output_tokens) for c in calls] == [
        (u.input_tokens, u.output_tokens) for u in (scripted_usage(studio, b) for b in bodies)
    ]
    expected = expected_cost(studio, bodies)
    assert expected > 0
    assert sum(c.cost_usd for c in calls) == expected
    assert Decimal(str(session["total_cost_usd"])) == expected
    assert session["usage"]["model_calls"] == 2
    usage = api.get("/api/usage/").json()
    assert Decimal(usage["model_usd"]) == expected


def test_a_per_run_budget_stops_the_run_with_a_red_line_naming_it(studio, api):
    studio.add_script(two_turns("[[costly]]", "echo costly"))
    agent_id = create_agent(api, model=MODEL, budget_usd_per_run="0.0001")
    session = run(api, agent_id, "[[costly]] go " + "pad " * 300)
    assert len(studio.messages_requests()) == 1  # the second turn never reached the model
    (call,) = ModelCall.objects.filter(session_id=session["id"])
    assert call.cost_usd >= Decimal("0.0001")
    spent = call.cost_usd.quantize(Decimal("0.0001"))
    message = f"Budget reached: the agent's per-run budget, spent ${spent} of $0.0001"
    errors = [line for line in all_lines(api, session["id"]) if line["kind"] == "error"]
    assert any(message in plain(line["text"]) and "\x1b[31m" in line["text"] for line in errors), (
        errors
    )
    assert session["status"] == "failed", session
    assert Decimal(str(session["total_cost_usd"])) == call.cost_usd


def test_a_daily_budget_stops_the_next_run_naming_the_limit_and_the_spend(studio, api):
    agent_id = create_agent(api, model=MODEL, budget_usd_per_day="0.0001")
    first = run(api, agent_id, "hello " + "pad " * 300)
    assert first["status"] == "completed", first
    spent = ModelCall.objects.get(session_id=first["id"]).cost_usd
    assert spent >= Decimal("0.0001")
    res = api.post(f"/api/agents/{agent_id}/execute", {"prompt": "again"}, format="json")
    assert res.status_code == 429, res.content
    body = res.json()
    shown = spent.quantize(Decimal("0.0001"))
    assert body["error"] == "BudgetReached"
    assert body["message"] == f"Budget reached: the agent's daily budget, spent ${shown} of $0.0001"
    assert body["details"] == {
        "limit": "agent.usd_per_day",
        "limit_usd": "0.0001",
        "spent_usd": str(shown),
    }
    assert len(studio.messages_requests()) == 1
    agent = api.get(f"/api/agents/{agent_id}/").json()
    assert agent["budget"]["spent"]["usd_per_day"] == str(spent)
    assert agent["budget"]["remaining"]["usd_per_day"] == "0.000000"


def test_a_users_daily_limit_stops_runs_of_all_their_agents(studio, api):
    assert api.put("/api/usage/limits", {"usd_per_day": "0.0001"}, format="json").status_code == 200
    first_agent = create_agent(api, model=MODEL)
    assert run(api, first_agent, "hello " + "pad " * 300)["status"] == "completed"
    other_agent = create_agent(api, name="other", model=MODEL)
    res = api.post(f"/api/agents/{other_agent}/execute", {"prompt": "again"}, format="json")
    assert res.status_code == 429
    assert res.json()["message"].startswith("Budget reached: your daily limit, spent $")
    usage = api.get("/api/usage/").json()
    assert usage["limits"]["usd_per_day"] == "0.0001"
    assert usage["remaining"]["usd_per_day"] == "0.000000"


PRUNE = (
    "\\( "
    + " -o ".join(f"-path {p}" for p in ("/proc", "/sys", "/dev", "/usr", "/work", "/root", "/opt"))
    + " \\)"
)


def _forms(secret: str) -> list[str]:
    raw = secret.encode()
    return [
        secret,
        secret[::-1],
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        raw.hex(),
        codecs.encode(secret, "rot13"),
        secret[8:24],  # a fragment of it
    ]


def test_no_form_of_the_operators_key_is_in_the_sandbox_and_its_credential_dies(studio, api):
    studio.add_script(
        two_turns(
            "[[snoop]]", "env > run-env.txt; cat /proc/*/environ > procs.txt 2>/dev/null; true"
        )
    )
    agent_id = create_agent(api, model=MODEL)
    deploy_ready(api, agent_id)
    session = run(api, agent_id, "[[snoop]] look around")
    assert session["status"] == "completed", session

    def sh(command: str) -> str:
        res = api.post(
            f"/api/agents/{agent_id}/sandbox/exec",
            {"command": command, "timeout": 30000},
            format="json",
        )
        assert res.status_code == 200, res.content
        return res.json()["stdout"] + res.json()["stderr"]

    run_env = api.get(f"/api/agents/{agent_id}/sandbox/files?path=run-env.txt").json()["content"]
    # The run's env holds the session's own gateway credential, which every answer of the
    # studio masks like any credential it hands out.
    credential = tokens.model_token(session["id"])
    assert "ANTHROPIC_API_KEY=***" in run_env and credential not in run_env
    assert "ANTHROPIC_BASE_URL=http" in run_env and "/api/internal/model" in run_env
    seen = "\n".join(
        [
            run_env,
            sh("env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'"),
            # Every file the sandbox user can read, but the read-only system and Python trees.
            sh(
                f"cat procs.txt; find / {PRUNE} -prune -o -type f -readable -size -4M -print0 "
                "2>/dev/null | xargs -0 -r cat 2>/dev/null | strings"
            ),
        ]
    )
    # The search reached the run's files: its transcript in HOME holds the model's words.
    assert "On it." in seen and credential not in seen
    for form in _forms(REAL_KEY):
        assert form not in seen, form

    # The run is over: its credential, used from inside the sandbox, is refused.
    probe = (
        "import json, os, sys, urllib.request, urllib.error\n"
        "req = urllib.request.Request(sys.argv[1] + '/v1/messages', method='POST',\n"
        "    data=json.dumps({'model': 'm', 'max_tokens': 5,\n"
        "                     'messages': [{'role': 'user', 'content': 'hi'}]}).encode(),\n"
        "    headers={'x-api-key': sys.argv[2], 'content-type': 'application/json'})\n"
        "try:\n    print(urllib.request.urlopen(req).status)\n"
        "except urllib.error.HTTPError as e:\n    print(e.code, e.read().decode())\n"
    )
    api.post(
        f"/api/agents/{agent_id}/sandbox/files",
        {"files": [{"path": "probe.py", "content": probe}]},
        format="json",
    )
    base = next(
        line.split("=", 1)[1]
        for line in run_env.splitlines()
        if line.startswith("ANTHROPIC_BASE_URL=")
    )
    answer = sh(f"python3 probe.py {base} {credential}")
    assert answer.startswith("401 "), answer
    assert json.loads(answer[4:])["error"]["type"] == "authentication_error"
    assert len(studio.messages_requests()) == 2
