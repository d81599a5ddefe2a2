"""Server time of the pages on a big account, against /healthz in the same run.

A throwaway embedded studio (temporary SQLite in its own data dir) with one user, 20 agents,
one of them with 1,000 sessions, one session of 100,000 log lines. Each page is fetched
through Django's test client (the server's own time: URL routing, middleware, queries,
templates; no network or browser) after warm-up:

- ``/`` (the agents list), ``/agents/{id}/`` (1,000 sessions), ``/sessions/{id}/`` (the
  100k-line session: the page must not render lines; the browser loads the tail by API);
- baseline: ``GET /healthz`` (database, channel layer and broker checks).

Prints ``{"name": "pages", "metrics", "baseline", "ratio", "target_ms", "ok"}`` and writes it
to ``--out``. ``ratio`` = the slowest page's p50 / the baseline's p50. Target: p95 < 300 ms.

    .venv/bin/python bench/pages.py [--rounds 30] [--out bench/pages.json]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import emit, summary_ms

TARGET_MS = 300
SESSIONS = 1_000
LINES = 100_000


def setup_django(data_dir: str) -> None:
    warnings.filterwarnings("ignore", "No directory at")  # no collectstatic in a scratch run
    os.environ.update(
        STUDIO_DATA_DIR=data_dir,
        DJANGO_SETTINGS_MODULE="studio.settings",
        DEBUG="false",  # no per-query debug bookkeeping: time what production does
        SECURE_SSL_REDIRECT="false",
        ALLOWED_HOSTS="testserver",
        SECRET_KEY="bench-" + "x" * 60,
        INTERNAL_API_KEY="bench-internal-key",
        LOG_LEVEL="WARNING",
    )
    for var in ("DATABASE_URL", "REDIS_URL"):  # always a scratch embedded database
        os.environ.pop(var, None)
    import django

    django.setup()
    from django.conf import settings

    # Pages link static files by name; no collectstatic manifest exists in a scratch dir.
    settings.STORAGES["staticfiles"]["BACKEND"] = (
        "django.contrib.staticfiles.storage.StaticFilesStorage"
    )
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed():
    from django.contrib.auth.models import User

    from agents.models import Agent, Session
    from logs.models import LogLine

    user = User.objects.create_user("bench", password="bench-pass-1")
    agents = [Agent.objects.create(owner=user, name=f"agent-{i:02d}") for i in range(20)]
    big = agents[0]
    now = datetime.now(UTC)
    Session.objects.bulk_create(
        [
            Session(
                agent=big,
                prompt=f"prompt number {i}",
                status="completed",
                started_at=now,
                finished_at=now,
                num_turns=3,
                total_cost_usd=Decimal("0.0123"),
            )
            for i in range(SESSIONS - 1)
        ],
        batch_size=500,
    )
    long = Session.objects.create(
        agent=big, prompt="the long one", status="completed", last_seq=LINES, started_at=now
    )
    batch = 5_000
    for start in range(1, LINES + 1, batch):
        LogLine.objects.bulk_create(
            [
                LogLine(
                    session=long, seq=seq, kind="stdout", text=f"\x1b[2mline {seq}\x1b[0m", ts=now
                )
                for seq in range(start, min(start + batch, LINES + 1))
            ]
        )
    return user, big, long


def measure(client, path: str, rounds: int) -> tuple[dict, int]:
    for _ in range(3):  # warm-up: template loading, connection setup
        client.get(path)
    times, size = [], 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        res = client.get(path)
        times.append(time.perf_counter() - t0)
        assert res.status_code == 200, (path, res.status_code)
        size = len(res.content)
    return summary_ms(times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--out")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="studio-bench-pages-") as data:
        setup_django(data)
        from django.test import Client

        t0 = time.perf_counter()
        user, agent, long = seed()
        seed_s = time.perf_counter() - t0
        client = Client()
        client.force_login(user)
        pages = {
            "agents_list": "/",
            "agent_detail_1000_sessions": f"/agents/{agent.pk}/",
            "terminal_100k_lines": f"/sessions/{long.pk}/",
        }
        metrics, sizes = {}, {}
        for name, path in pages.items():
            metrics[name], sizes[name] = measure(client, path, args.rounds)
        baseline, _ = measure(client, "/healthz", args.rounds)
        terminal_html = client.get(pages["terminal_100k_lines"]).content.decode()
        assert "line 1" not in terminal_html, "the terminal page rendered stored lines"
    slowest = max(m["p50_ms"] for m in metrics.values())
    worst_p95 = max(m["p95_ms"] for m in metrics.values())
    emit(
        {
            "name": "pages",
            "metrics": {**metrics, "html_bytes": sizes, "seed_seconds": round(seed_s, 1)},
            "baseline": {"healthz": baseline},
            "ratio": round(slowest / baseline["p50_ms"], 2) if baseline["p50_ms"] else None,
            "target_ms": TARGET_MS,
            "ok": worst_p95 < TARGET_MS,
            "setup": {"agents": 20, "sessions": SESSIONS, "lines": LINES, "rounds": args.rounds},
        },
        args.out,
    )


if __name__ == "__main__":
    main()
