"""The load path of bench/load.py, small enough for CI: concurrent runs, every log complete.

Five agents run the scripted conversation at once in local bubblewrap sandboxes on a real
studio (a ``runstudio`` process; with DATABASE_URL and REDIS_URL set, daphne + celery worker +
beat on a throwaway PostgreSQL database and an empty Redis database), a WebSocket watcher on
each. Every session's log must be seq 1..N exactly once as the watcher received it, as the API
pages it and as the database holds it. The same functions as the benchmark, so a regression in
completeness fails here first.
"""

from __future__ import annotations

import os
import shutil

import pytest

from bench.load import load_script, log_problems, run_load

pytestmark = pytest.mark.slow

PRODUCTION = bool(os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"))


def _line(seq: int, kind: str = "assistant") -> dict:
    return {"seq": seq, "kind": kind, "text": f"line {seq}", "ts": "2026-01-01T00:00:00.000Z"}


def test_it_accepts_a_log_seen_whole_by_watcher_api_and_database():
    lines = [_line(1), _line(2), _line(3, "result")]
    assert (
        log_problems(last_seq=3, status="completed", watched=lines, stored=lines, db_seqs=[1, 2, 3])
        == []
    )


@pytest.mark.parametrize(
    ("watched", "stored", "db_seqs", "problem"),
    [
        ([_line(1), _line(3, "result")], None, [1, 2, 3], "watcher: missing [2]"),
        ([_line(1), _line(2), _line(2), _line(3, "result")], None, [1, 2, 3], "duplicated [2]"),
        ([_line(2), _line(1), _line(3, "result")], None, [1, 2, 3], "out of order"),
        (None, [_line(1), _line(3, "result")], [1, 2, 3], "api: 2 lines"),
        (None, None, [1, 3], "db: 2 rows"),
        (None, [_line(1), _line(2), _line(3)], [1, 2, 3], "not the result"),
    ],
)
def test_it_reports_a_gap_a_duplicate_or_a_disagreement(watched, stored, db_seqs, problem):
    whole = [_line(1), _line(2), _line(3, "result")]
    problems = log_problems(
        last_seq=3,
        status="completed",
        watched=watched or whole,
        stored=stored or whole,
        db_seqs=db_seqs,
    )
    assert any(problem in p for p in problems), problems


@pytest.mark.skipif(not shutil.which("bwrap"), reason="local sandboxes need bubblewrap")
def test_five_concurrent_runs_deliver_every_line_exactly_once():
    result = run_load(
        runs=5,
        baseline_runs=0,
        production_mode=PRODUCTION,
        script=load_script(turns=2, texts=2, echo_lines=3, pause=0.1),
        timeout=120,
    )

    assert result["incomplete"] == [], result["incomplete"]
    metrics = result["metrics"]
    assert metrics["complete_sessions"] == 5
    # 2 turns x (2 texts + call + result) + the final answer, system and result lines.
    assert metrics["lines_received"] >= 5 * 10
    assert metrics["line_latency"]["n"] == metrics["lines_received"]
