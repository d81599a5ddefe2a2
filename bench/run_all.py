"""Run every benchmark, one after another, and gather their JSON into one results file.

Each benchmark runs as its own subprocess with ``--out`` into a temporary file; its JSON (with
its same-run baseline and ratio) is kept as it is under ``benchmarks[name]``, with ``run``
added: the command, seconds, exit code and the load average before and after (other work on
the machine skews every figure). A benchmark that fails is recorded with its error and the
tail of its output, and this script then exits 1. ``machine`` says where it all ran.

``ingest`` and ``gateway_production`` need PostgreSQL and Redis: DATABASE_URL / REDIS_URL are
passed through if set, else the local services (postgres://postgres@127.0.0.1:5432/studio,
redis://127.0.0.1:6379/0). The other benchmarks get neither (they make their own embedded
studios; ``load_production`` makes its own PostgreSQL database and picks an empty Redis
database).

    .venv/bin/python bench/run_all.py --out bench/results.json [--quick] [--only load,pages]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCAL_SERVICES = {
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/studio",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
}

# name -> (script, arguments, --quick arguments, needs PostgreSQL and Redis)
BENCHMARKS = {
    "deploy": ("deploy.py", [], ["--runs", "3", "--idle", "5"], False),
    "runtime_overhead": ("runtime_overhead.py", [], ["--runs", "2"], False),
    "ingest": ("ingest.py", [], ["--quick"], True),
    "gateway": ("gateway.py", [], ["--calls", "100"], False),
    "gateway_production": (
        "gateway.py",
        ["--production"],
        ["--production", "--calls", "100"],
        True,
    ),
    "pages": ("pages.py", [], ["--rounds", "10"], False),
    "load": ("load.py", [], ["--quick"], False),
    "load_production": ("load.py", ["--production"], ["--production", "--quick"], True),
}


def machine() -> dict:
    info = {
        "cpu_model": None,
        "cores": os.cpu_count(),
        "memory_gib": None,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    info["commit"] = commit.stdout.strip() or None
    return info


def run_one(name: str, quick: bool, timeout: float, workdir: Path) -> dict:
    script, args, quick_args, services = BENCHMARKS[name]
    out = workdir / f"{name}.json"
    log = workdir / f"{name}.log"
    # Relative to the repository (the cwd below), so the record names no path of this machine.
    arguments = [f"bench/{script}", *(quick_args if quick else args)]
    command = [sys.executable, *arguments, "--out", str(out)]
    env = dict(os.environ)
    for var, default in LOCAL_SERVICES.items():
        if services:
            env.setdefault(var, default)
        elif name != "load_production":
            env.pop(var, None)
    before = [round(x, 2) for x in os.getloadavg()]
    started = time.monotonic()
    error = None
    with open(log, "wb") as fh:
        try:
            proc = subprocess.run(
                command, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout
            )
            returncode = proc.returncode
        except subprocess.TimeoutExpired:
            returncode, error = None, f"timed out after {timeout:.0f}s"
    run = {
        "command": " ".join(["python", *arguments]),
        "seconds": round(time.monotonic() - started, 1),
        "returncode": returncode,
        "load_average_before": before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    result: dict = {}
    if out.exists():
        try:
            result = json.loads(out.read_text())
        except ValueError as exc:
            error = error or f"unreadable output: {exc}"
    if returncode != 0 and error is None:
        error = f"exit code {returncode}"
    if not result and error is None:
        error = "no output"
    if error:
        result["error"] = error
        result["output_tail"] = log.read_text(errors="replace")[-3000:]
    result["run"] = run
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "bench" / "results.json"))
    parser.add_argument("--quick", action="store_true", help="each benchmark's small version")
    parser.add_argument("--only", help="comma-separated names: " + ",".join(BENCHMARKS))
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per benchmark")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmarks: {sorted(unknown)}")

    results = {"machine": machine(), "quick": args.quick, "benchmarks": {}}
    failed = []
    with tempfile.TemporaryDirectory(prefix="bench-all-") as tmp:
        for name in names:
            print(f"bench: {name} ...", file=sys.stderr, flush=True)
            result = run_one(name, args.quick, args.timeout, Path(tmp))
            results["benchmarks"][name] = result
            status = f"FAILED ({result['error']})" if "error" in result else "ok"
            print(f"bench: {name} {status} in {result['run']['seconds']}s", file=sys.stderr)
            if "error" in result:
                failed.append(name)
            # Written after each one, so an interrupted run keeps what it measured.
            results["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
            Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    if failed:
        print(f"bench: failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
