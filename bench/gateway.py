"""The model gateway's cost per call: a streamed ``POST /v1/messages`` through the studio's
gateway against the same call straight to the model, measured in the same run.

An embedded studio (``runstudio``: uvicorn, SQLite; or with ``--production`` the web tier,
``manage.py serve``, on PostgreSQL and Redis) is started with the scripted model's answers as
its upstream (``scripted_upstream`` below, under uvicorn in its own process: kept-alive
HTTP/1.1 connections, as Anthropic's API keeps them), and one running session in a ready
sandbox whose gateway credential the calls carry. Calls alternate between
the gateway and the model itself, one at a time, each over a kept-alive connection, so both
see the same machine. Per call: time to the first byte and to the end of the answer (the
whole SSE stream read). Through the gateway that includes checking the credential and the
budgets (two queries), forwarding, relaying the stream and metering it (one row written and
the session's figures updated) before the answer ends.

``overhead_p50_ms`` = gateway p50 - direct p50 (end of answer); target < 5 ms. ``ratio`` =
gateway p50 / direct p50. Every call must be metered: ``metered_calls`` = calls made, or the
script exits 1.

    .venv/bin/python bench/gateway.py [--calls 400] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, embedded_studio, emit, summary_ms
from studio.testing.servers import free_port, wait_http

TARGET_OVERHEAD_MS = 5.0
BODY = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 256,
    "stream": True,
    "messages": [{"role": "user", "content": "Say hello in a short sentence, please."}],
}
SETUP = """
from agents.models import Agent, Session
from django.contrib.auth.models import User
from sandboxes.models import Sandbox
from studio import tokens
user = User.objects.get(username="bench")
agent = Agent.objects.create(owner=user, name="gateway-bench", model="claude-sonnet-4-5")
# No process stands behind this row: "paused" (live, so the gateway takes its calls) keeps
# the embedded studio's check of busy sandboxes from failing it mid-bench.
box = Sandbox.objects.create(agent=agent, backend="local", status="paused")
session = Session.objects.create(agent=agent, sandbox=box, prompt="bench", status="running")
print(session.pk, tokens.model_token(session.pk))
"""
COUNT = """
from gateway.models import ModelCall
print(ModelCall.objects.filter(session_id="{session}", status=200, output_tokens__gt=0).count())
"""


async def scripted_upstream(scope, receive, send):
    """The scripted model's answers (agent_runtime.scripted_model's events and usage) served
    as Anthropic's API serves them: HTTP/1.1 with kept-alive connections (uvicorn), where the
    scripted model's own server (HTTP/1.0, for tests) closes each connection. The gateway
    keeps its upstream connections alive; measuring it against an upstream that forces a new
    connection per call would measure connection setup instead."""
    from agent_runtime.scripted_model import ScriptedModel, _estimate_tokens, sse_events

    if scope["type"] != "http":
        return
    raw = b""
    while True:
        message = await receive()
        raw += message.get("body", b"")
        if not message.get("more_body"):
            break
    body = json.loads(raw or b"{}")
    turn = ScriptedModel().plan(body)
    events = sse_events(turn, body.get("model") or "", _estimate_tokens(body.get("messages")))
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
        }
    )
    for event in events:
        if isinstance(event, dict):
            chunk = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def manage_shell(code: str, env: dict) -> str:
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


@contextmanager
def web_tier(extra: dict):
    """`manage.py serve --processes 1` (pooled connections) on a throwaway PostgreSQL
    database and an empty Redis database: the web process as docker-compose runs it. No
    Celery here: only the gateway is measured (and reconciliation would stop the bench's
    sandbox row, which has no real sandbox behind it)."""
    import psycopg
    import redis

    from bench.load import _free_redis_db

    parts = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
    name = f"studio_gateway_{uuid.uuid4().hex[:8]}"
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    redis_url = _free_redis_db(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    port = free_port()
    env = {
        **os.environ,
        **extra,
        "DATABASE_URL": urlunsplit(parts._replace(path="/" + name)),
        "REDIS_URL": redis_url,
        "SECRET_KEY": "bench-gateway-" + "k" * 60,
        "INTERNAL_API_KEY": "bench-gateway-internal-key",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "BACKEND_API_URL": f"http://127.0.0.1:{port}",
    }
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    web = None
    try:
        py = sys.executable
        subprocess.run([py, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        manage_shell(
            "from django.contrib.auth.models import User; "
            "print(User.objects.create_user('bench').pk)",
            env,
        )
        web = subprocess.Popen(
            [py, "manage.py", "serve", "--port", str(port), "--processes", "1"],
            cwd=ROOT,
            env={**env, "DATABASE_POOL": "true"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/healthz", process=web)
        yield base, env
    finally:
        if web is not None:
            web.terminate()
            web.wait(timeout=20)
        with psycopg.connect(maintenance, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        redis.Redis.from_url(redis_url).flushdb()


@contextmanager
def studio(extra: dict, *, production: bool):
    """(base URL, the environment its manage.py commands need): an embedded studio
    (runstudio) or the production web tier (`web_tier`)."""
    if production:
        with web_tier(extra) as found:
            yield found
        return
    with embedded_studio(extra) as (base, _token, data):
        env = {**os.environ, "STUDIO_DATA_DIR": data, **extra}
        for var in ("DATABASE_URL", "REDIS_URL"):
            env.pop(var, None)
        yield base, env


def one_call(client: httpx.Client, url: str, headers: dict) -> tuple[float, float]:
    """(seconds to the first byte, seconds to the end of the answer)."""
    started = time.perf_counter()
    first = None
    with client.stream("POST", url, json=BODY, headers=headers) as res:
        if res.status_code != 200:
            raise RuntimeError(f"{url} answered {res.status_code}: {res.read()[:300]!r}")
        for _ in res.iter_raw():
            if first is None:
                first = time.perf_counter() - started
    return first or 0.0, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=400, help="calls each way")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument(
        "--production",
        action="store_true",
        help="the production web tier (manage.py serve, PostgreSQL, Redis) instead of runstudio",
    )
    parser.add_argument("--out")
    args = parser.parse_args()

    model_port = free_port()
    model = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "bench.gateway:scripted_upstream"),
            *("--port", str(model_port), "--no-access-log", "--log-level", "warning"),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    model_url = f"http://127.0.0.1:{model_port}"
    try:
        for _ in range(100):
            try:
                httpx.post(model_url + "/v1/messages", json={**BODY, "stream": False}, timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        extra = {
            "ANTHROPIC_BASE_URL": model_url,
            "ANTHROPIC_API_KEY": "sk-ant-bench-operator-key",
            "LOG_LEVEL": "WARNING",
            # As a deployed studio runs: no per-query debug bookkeeping.
            "DEBUG": "false",
            "SECURE_SSL_REDIRECT": "false",
            "SECURE_COOKIES": "false",
        }
        with studio(extra, production=args.production) as (base, env):
            session_id, credential = manage_shell(SETUP, env).split()
            wait_http(base + "/healthz")
            gateway = {"url": base + "/api/internal/model/v1/messages?beta=true", "key": credential}
            direct = {"url": model_url + "/v1/messages?beta=true", "key": "sk-ant-bench"}
            samples: dict[str, list[tuple[float, float]]] = {"gateway": [], "direct": []}
            with httpx.Client(timeout=30) as gw_client, httpx.Client(timeout=30) as direct_client:
                clients = {"gateway": gw_client, "direct": direct_client}
                targets = {"gateway": gateway, "direct": direct}
                for i in range(args.warmup + args.calls):
                    order = ("gateway", "direct") if i % 2 else ("direct", "gateway")
                    for name in order:
                        target = targets[name]
                        timing = one_call(
                            clients[name],
                            target["url"],
                            {"x-api-key": target["key"], "anthropic-version": "2023-06-01"},
                        )
                        if i >= args.warmup:
                            samples[name].append(timing)
            metered = int(manage_shell(COUNT.format(session=session_id), env))
    finally:
        model.terminate()
        model.wait(timeout=10)

    metrics = {
        name: {
            "first_byte": summary_ms([s[0] for s in values]),
            "answer": summary_ms([s[1] for s in values]),
        }
        for name, values in samples.items()
    }
    gw, dr = metrics["gateway"]["answer"], metrics["direct"]["answer"]
    overhead = round(gw["p50_ms"] - dr["p50_ms"], 2)
    made = args.calls + args.warmup
    result = {
        "name": "gateway",
        "metrics": {
            "gateway": metrics["gateway"],
            "overhead_p50_ms": overhead,
            "overhead_p99_ms": round(gw["p99_ms"] - dr["p99_ms"], 2),
            "metered_calls": metered,
            "calls_made": made,
        },
        "baseline": {"direct": metrics["direct"]},
        "ratio": round(gw["p50_ms"] / dr["p50_ms"], 2) if dr["p50_ms"] else None,
        "targets": {"overhead_p50_ms_max": TARGET_OVERHEAD_MS},
        "meets_target": overhead < TARGET_OVERHEAD_MS,
        "mode": "production" if args.production else "embedded",
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    emit(result, args.out)
    if metered != made:
        sys.exit(f"only {metered} of {made} gateway calls were metered")


if __name__ == "__main__":
    main()
