"""Log ingest end to end: HTTP append -> PostgreSQL -> Redis channel layer -> WebSocket.

Against the production web tier this script starts (``manage.py serve``: gunicorn with a
uvicorn worker per core, pooled database connections, as docker-compose runs it), on a
database of its own
(``<DATABASE_URL name>_bench``, created and dropped here), measured in the same run:

- throughput: K sessions x N lines posted through ``POST /api/internal/logs/append`` (one
  request in flight per session, like the runtime's shipper), a WebSocket subscriber on each:
  lines/s stored (all appends answered) and delivered (every subscriber has every line); the
  client encodes and decodes with orjson, to leave the studio as much of the machine as it can;
- latency: append -> WebSocket receipt, p50/p99, at 1,000 lines/s (4 sessions x 250 lines/s,
  each batched as the runtime's shipper batches: ~50 ms of lines per append), and under load;
- baseline: psycopg ``COPY`` of the same rows into the same table;
- the last page of a 1,000,000-line session (rows made with COPY):
  ``GET /api/sessions/{id}/logs?after=<last-500>``.

Prints ``{"name": "ingest", "metrics", "baseline", "ratio", ...}`` and writes it to ``--out``.
``ratio`` = stored lines/s end to end / COPY rows/s. Needs DATABASE_URL and REDIS_URL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/studio REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/ingest.py [--quick] [--out bench/ingest.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson
import psycopg
import websockets

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
TS = "2026-01-01T00:00:00.000Z"
LINGER, SHIP_MAX_LINES = 0.05, 300  # the runtime shipper's defaults
SECRET = "bench-secret-value-0123456789"


def make_line(seq: int) -> dict:
    """A typical tool_result line: ANSI text and a small structured message."""
    text = f"  \x1b[2m⎿\x1b[0m  line {seq}: compiled module_{seq % 97}.py in 0.{seq % 10}s ok"
    data = {"type": "UserMessage", "content": [{"tool_use_id": f"t{seq % 13}", "text": text}]}
    return {"seq": seq, "kind": "tool_result", "text": text, "data": data, "ts": TS}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# ---- setup -----------------------------------------------------------------------------


def prepare_environment() -> tuple[str, str]:
    """Create the bench database, point Django at it and migrate; (maintenance, bench) URLs."""
    base, redis = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if not (base and redis):
        sys.exit("bench/ingest.py needs DATABASE_URL (PostgreSQL) and REDIS_URL")
    parts = urlsplit(base)
    name = (parts.path.lstrip("/") or "studio") + "_bench"
    base = urlunsplit(parts._replace(path="/postgres"))  # the maintenance database
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = bench_url = urlunsplit(parts._replace(path="/" + name))
    os.environ.setdefault("SECRET_KEY", "bench-" + "x" * 60)
    os.environ.setdefault("INTERNAL_API_KEY", "bench-internal-key")
    os.environ.update(ALLOWED_HOSTS="127.0.0.1", DEBUG="false", SECURE_SSL_REDIRECT="false")
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["DJANGO_SETTINGS_MODULE"] = "studio.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return base, bench_url


def make_rows(sessions: int):
    """A user with a token, an agent with a secret, and ``sessions`` running sessions."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from agents.models import Agent, Secret, Session

    user = get_user_model().objects.create_user("bench", password="bench-pw-1")
    agent = Agent.objects.create(owner=user, name="bench")
    secret = Secret(agent=agent, name="BENCH_TOKEN")
    secret.set_value(SECRET)
    secret.save()
    made = [
        Session.objects.create(agent=agent, prompt="bench", status="running")
        for _ in range(sessions)
    ]
    return Token.objects.create(user=user).key, made


def start_web(port: int, processes: int) -> subprocess.Popen:
    """The production web tier: ``manage.py serve`` (gunicorn's uvicorn workers on the port)."""
    cmd = [sys.executable, "manage.py", "serve", "--port", str(port)]
    return subprocess.Popen(
        [*cmd, "--processes", str(processes)],
        cwd=REPO,
        env={**os.environ, "DATABASE_POOL": "true"},  # as docker-compose runs web
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_ready(port: int) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                await client.get(f"http://127.0.0.1:{port}/healthz")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise RuntimeError("the web tier did not start")


# ---- end to end ------------------------------------------------------------------------


class Subscriber:
    """A session socket that records when each seq arrived."""

    def __init__(self, port: int, key: str, session_id, expected: int):
        self.url = f"ws://127.0.0.1:{port}/ws/sessions/{session_id}/"
        self.headers = {"Authorization": f"Token {key}"}
        self.origin = f"http://127.0.0.1:{port}"
        self.expected, self.arrived, self.errors = expected, {}, 0
        self.done = asyncio.Event()

    async def open(self) -> None:
        self.ws = await websockets.connect(
            self.url, additional_headers=self.headers, origin=self.origin, max_size=2**24
        )
        assert json.loads(await self.ws.recv())["type"] == "session"
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        last = 0
        async for raw in self.ws:
            now = time.perf_counter()
            message = orjson.loads(raw)
            received = message.get("lines") if message["type"] == "lines" else None
            for line in received or []:
                self.errors += line["seq"] != last + 1  # a gap or a duplicate
                last = line["seq"]
                self.arrived[line["seq"]] = now
            if len(self.arrived) >= self.expected:
                self.done.set()

    async def close(self) -> None:
        self.task.cancel()
        await self.ws.close()


async def post(client, url, headers, session_id, batch, sent_at, rtts) -> None:
    now = time.perf_counter()
    for line in batch:
        sent_at[line["seq"]] = now
    body = orjson.dumps({"session_id": str(session_id), "lines": batch})
    r = await client.post(url, content=body, headers=headers)
    rtts.append((time.perf_counter() - now) * 1000)
    r.raise_for_status()


async def flood(client, url, session, lines: list[dict], batch: int, sent_at, rtts) -> None:
    """Full batches back to back, one append in flight: a shipper with a backlog."""
    headers = _bearer(session)
    for first in range(0, len(lines), batch):
        await post(client, url, headers, session.pk, lines[first : first + batch], sent_at, rtts)


async def ship(client, url, session, lines: list[dict], rate: float, sent_at, rtts) -> None:
    """The runtime's shipper (agent_runtime/shipper.py) under lines that appear at ``rate``
    per second: a batch leaves once its oldest line has waited LINGER, or at once when lines
    piled up while the previous append was in flight; one append in flight; at most
    SHIP_MAX_LINES lines."""
    headers = _bearer(session)
    start, sent, backlog = time.perf_counter(), 0, False
    while sent < len(lines):
        oldest_at = start + sent / rate
        if not backlog:
            await asyncio.sleep(max(0.0, oldest_at + LINGER - time.perf_counter()))
        produced = min(len(lines), int((time.perf_counter() - start) * rate) + 1)
        batch = lines[sent : min(produced, sent + SHIP_MAX_LINES)]
        await post(client, url, headers, session.pk, batch, sent_at, rtts)
        sent += len(batch)
        backlog = int((time.perf_counter() - start) * rate) + 1 > sent


def _bearer(session) -> dict:
    from studio.tokens import session_token

    return {
        "Authorization": f"Bearer {session_token(session.pk)}",
        "Content-Type": "application/json",
    }


async def run_phase(port, key, sessions, lines_each, batch=None, rate=None) -> dict:
    """Post ``lines_each`` lines to each session, in full ``batch``es back to back or as a
    shipper would at ``rate`` lines/s each; return rates and latencies."""
    url = f"http://127.0.0.1:{port}/api/internal/logs/append"
    subs = [Subscriber(port, key, s.pk, lines_each) for s in sessions]
    await asyncio.gather(*(sub.open() for sub in subs))
    sent, rtts = [dict() for _ in sessions], []
    lines = [make_line(seq) for seq in range(1, lines_each + 1)]
    # A client (one keep-alive connection) per session, as each sandbox's shipper has its own.
    clients = [httpx.AsyncClient(timeout=60) for _ in sessions]
    try:
        start = time.perf_counter()
        await asyncio.gather(
            *(
                flood(clients[i], url, s, lines, batch, sent[i], rtts)
                if rate is None
                else ship(clients[i], url, s, lines, rate, sent[i], rtts)
                for i, s in enumerate(sessions)
            )
        )
        stored = time.perf_counter() - start
        await asyncio.wait_for(asyncio.gather(*(sub.done.wait() for sub in subs)), 120)
        delivered = max(max(sub.arrived.values()) for sub in subs) - start
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
    latencies = [
        (sub.arrived[seq] - sent[i][seq]) * 1000
        for i, sub in enumerate(subs)
        for seq in sub.arrived
    ]
    for sub in subs:
        await sub.close()
    total = lines_each * len(sessions)
    return {
        "lines": total,
        "appends": len(rtts),
        "stored_lines_per_s": round(total / stored),
        "delivered_lines_per_s": round(total / delivered),
        "latency_ms_p50": round(percentile(latencies, 0.50), 2),
        "latency_ms_p99": round(percentile(latencies, 0.99), 2),
        "append_ms_p50": round(percentile(rtts, 0.50), 2),
        "append_ms_p99": round(percentile(rtts, 0.99), 2),
        "delivery_errors": sum(sub.errors for sub in subs),
    }


# ---- baselines -------------------------------------------------------------------------


def copy_rows(dsn: str, session_ids: list, lines_each: int) -> float:
    """COPY the same rows into logs_logline; return seconds (commit included)."""
    now = datetime.now(UTC)
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        start = time.perf_counter()
        columns = "session_id, seq, kind, text, data, ts, created_at"
        with cur.copy(f"COPY logs_logline ({columns}) FROM STDIN") as copy:
            for session_id in session_ids:
                for seq in range(1, lines_each + 1):
                    line = make_line(seq)
                    data = json.dumps(line["data"])
                    copy.write_row((session_id, seq, line["kind"], line["text"], data, now, now))
        conn.commit()
        return time.perf_counter() - start


async def last_page(port: int, key: str, session_id, last: int, repeats: int) -> dict:
    url = f"http://127.0.0.1:{port}/api/sessions/{session_id}/logs?after={last - 500}&limit=500"
    timings = []
    async with httpx.AsyncClient(headers={"Authorization": f"Token {key}"}) as client:
        for _ in range(repeats):
            start = time.perf_counter()
            r = await client.get(url)
            timings.append((time.perf_counter() - start) * 1000)
            r.raise_for_status()
            assert len(r.json()["lines"]) == 500 and r.json()["next_after"] == last
    return {
        "last_page_ms_first": round(timings[0], 2),
        "last_page_ms_p50": round(statistics.median(timings), 2),
        "last_page_ms_max": round(max(timings), 2),
    }


# ---- main ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=8, help="K concurrent sessions")
    parser.add_argument("--lines", type=int, default=20_000, help="N lines per session")
    parser.add_argument("--batch", type=int, default=300, help="lines per append (shipper max)")
    parser.add_argument("--rate-seconds", type=float, default=10, help="paced phase length")
    parser.add_argument("--big", type=int, default=1_000_000, help="lines in the big session")
    parser.add_argument("--quick", action="store_true", help="small K/N for a smoke run")
    parser.add_argument(
        "--web-processes", type=int, default=os.cpu_count(), help="web processes (serve)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    if args.quick:
        args.sessions, args.lines, args.rate_seconds, args.big = 2, 1000, 3, 50_000

    load_before = os.getloadavg()[0]
    base, dsn = prepare_environment()
    paced_sessions = 4  # 4 x 250 lines/s, each through a shipper (a batch every ~50 ms)
    key, sessions = make_rows(args.sessions + paced_sessions + args.sessions + 1)
    loaded, paced = sessions[: args.sessions], sessions[args.sessions : -args.sessions - 1]
    copied, big = sessions[-args.sessions - 1 : -1], sessions[-1]

    port = free_port()
    proc = start_web(port, args.web_processes)
    try:
        asyncio.run(wait_ready(port))
        load = asyncio.run(run_phase(port, key, loaded, args.lines, batch=args.batch))
        per_session = int(1000 / paced_sessions * args.rate_seconds)
        paced_result = asyncio.run(
            run_phase(port, key, paced, per_session, rate=1000 / paced_sessions)
        )
        copy_seconds = copy_rows(dsn, [s.pk for s in copied], args.lines)
        copy_rate = args.sessions * args.lines / copy_seconds
        copy_rows(dsn, [big.pk], args.big)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("ANALYZE logs_logline")
        page = asyncio.run(last_page(port, key, big.pk, args.big, repeats=20))
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        if not args.keep:
            from django.db import connections

            connections.close_all()
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{urlsplit(dsn).path[1:]}" WITH (FORCE)')

    ratio = load["stored_lines_per_s"] / copy_rate
    result = {
        "name": "ingest",
        "config": {
            "sessions": args.sessions,
            "lines_per_session": args.lines,
            "batch": args.batch,
            "paced_lines_per_s": 1000,
            "big_session_lines": args.big,
            "web_processes": args.web_processes,
            # Everything shares this machine's cores: a busy machine skews every number.
            "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "cpus": os.cpu_count(),
        },
        "metrics": {
            "stored_lines_per_s": load["stored_lines_per_s"],
            "delivered_lines_per_s": load["delivered_lines_per_s"],
            "latency_ms_p50_at_1000_lps": paced_result["latency_ms_p50"],
            "latency_ms_p99_at_1000_lps": paced_result["latency_ms_p99"],
            "append_ms_p50_at_1000_lps": paced_result["append_ms_p50"],
            "append_ms_p99_at_1000_lps": paced_result["append_ms_p99"],
            "appends_at_1000_lps": paced_result["appends"],
            "latency_ms_p50_under_load": load["latency_ms_p50"],
            "latency_ms_p99_under_load": load["latency_ms_p99"],
            "delivery_errors": load["delivery_errors"] + paced_result["delivery_errors"],
            **page,
        },
        "baseline": {"copy_rows_per_s": round(copy_rate)},
        "ratio": round(ratio, 3),
        "targets": {
            "ratio_at_least_0.3": ratio >= 0.3,
            "p99_under_100ms_at_1000_lps": paced_result["latency_ms_p99"] < 100,
            "last_page_under_50ms": page["last_page_ms_p50"] < 50,
        },
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
