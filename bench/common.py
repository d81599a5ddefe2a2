"""Shared by the benchmarks: percentiles, a throwaway embedded studio, JSON output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary_ms(seconds: list[float]) -> dict:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(pct(ms, 0.5), 1),
        "p95_ms": round(pct(ms, 0.95), 1),
        "p99_ms": round(pct(ms, 0.99), 1),
        "mean_ms": round(statistics.fmean(ms), 1) if ms else None,
    }


def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def emit(result: dict, out: str | None) -> None:
    result = {**result, "machine": machine()}
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        Path(out).write_text(text + "\n")


@contextmanager
def embedded_studio(extra_env: dict[str, str] | None = None):
    """A fresh embedded studio (`runstudio`) in a temporary data dir, with one user whose
    API token is yielded with the base URL."""
    from studio.testing.servers import free_port, wait_http

    with tempfile.TemporaryDirectory(prefix="studio-bench-") as data:
        port = free_port()
        env = {
            **os.environ,
            "STUDIO_DATA_DIR": data,
            "BACKEND_API_URL": f"http://127.0.0.1:{port}",
            **(extra_env or {}),
        }
        for var in ("DATABASE_URL", "REDIS_URL"):
            env.pop(var, None)
        py = sys.executable
        subprocess.run([py, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        token = (
            subprocess.run(
                [
                    py,
                    "manage.py",
                    "shell",
                    "-c",
                    "from django.contrib.auth.models import User;"
                    "from rest_framework.authtoken.models import Token;"
                    "u=User.objects.create_user('bench','','bench-pass-1');"
                    "print(Token.objects.create(user=u).key)",
                ],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        log = open(Path(data) / "studio.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [py, "manage.py", "runstudio", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_http(base + "/healthz", process=proc)
            yield base, token, data
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            log.close()
