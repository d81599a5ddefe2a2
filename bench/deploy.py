"""Deploy latency and idle sandbox memory on the local (bubblewrap) backend.

Measured: POST /api/agents/{id}/deploy -> the sandbox is ready (its event on the agent's
WebSocket, as the page sees it) on an embedded studio, then POST /stop; and POST /execute ->
its 202 answer.
Baseline, same run: a bare bubblewrap start of the runtime (the local backend's jail, no
studio) to its first healthy answer.
Also: the memory (PSS) of 20 idle local sandboxes.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid

import requests
from common import embedded_studio, emit, pct, summary_ms
from websockets.sync.client import connect as ws_connect

RUNS = 10


def bare_start(runs: int) -> list[float]:
    from sandboxes.backends.base import CreateSpec
    from sandboxes.backends.local import LocalBackend

    times = []
    with tempfile.TemporaryDirectory(prefix="bench-bare-") as data:
        backend = LocalBackend(data_dir=data)
        for _ in range(runs):
            token = uuid.uuid4().hex
            started = time.perf_counter()
            handle = backend.create(
                CreateSpec(sandbox_id=str(uuid.uuid4()), agent_id="bench", runtime_token=token)
            )
            _wait_healthy(handle.runtime_url, token)
            times.append(time.perf_counter() - started)
            backend.kill(handle.external_id)
    return times


def _wait_healthy(url: str, token: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            res = requests.get(
                url + "/health", headers={"Authorization": f"Bearer {token}"}, timeout=1
            )
            if res.ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.005)
    raise TimeoutError(url)


def studio_deploys(runs: int) -> tuple[list[float], list[float]]:
    from agent_runtime.scripted_model import ScriptedModel

    model = ScriptedModel()
    model_url = model.start()
    env = {
        "ANTHROPIC_BASE_URL": model_url,
        "ANTHROPIC_API_KEY": "bench-model-key",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDE_CODE_DISABLE_EXPERIMENTAL_BETAS": "1",
    }
    deploys, executes = [], []
    try:
        with embedded_studio(env) as (base, token, _data):
            s = requests.Session()
            s.headers["Authorization"] = f"Token {token}"
            agent = s.post(base + "/api/agents/", json={"name": "bench"}).json()["id"]
            # Watch the agent's socket, as the page does: polling the API would compete for
            # the CPU with the runtime booting in the sandbox and slow what it measures.
            ws_url = base.replace("http://", "ws://") + f"/ws/agents/{agent}/"
            with ws_connect(ws_url, additional_headers={"Authorization": f"Token {token}"}) as ws:
                json.loads(ws.recv(timeout=10))  # the agent's state on connect
                for _ in range(runs):
                    started = time.perf_counter()
                    res = s.post(f"{base}/api/agents/{agent}/deploy")
                    assert res.status_code == 202, res.text
                    sandbox_id = res.json()["deployment"]["id"]
                    _wait_ready_event(ws, sandbox_id)
                    deploys.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    res = s.post(f"{base}/api/agents/{agent}/execute", json={"prompt": "hi"})
                    executes.append(time.perf_counter() - started)
                    assert res.status_code == 202, res.text
                    time.sleep(1.0)  # let the run finish before the sandbox goes
                    s.post(f"{base}/api/agents/{agent}/stop")
    finally:
        model.stop()
    return deploys, executes


def _wait_ready_event(ws, sandbox_id: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        event = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        box = event.get("deployment") if event.get("type") == "deployment" else None
        if box and box["id"] == sandbox_id:
            if box["status"] == "ready":
                return
            if box["status"] in ("failed", "stopped"):
                raise RuntimeError(box)


def idle_memory(count: int) -> dict:
    from sandboxes.backends.base import CreateSpec
    from sandboxes.backends.local import LocalBackend
    from sandboxes.backends.local_jail import find_processes

    with tempfile.TemporaryDirectory(prefix="bench-idle-") as data:
        backend = LocalBackend(data_dir=data)
        handles = []
        try:
            for _ in range(count):
                token = uuid.uuid4().hex
                sid = str(uuid.uuid4())
                h = backend.create(CreateSpec(sandbox_id=sid, agent_id="b", runtime_token=token))
                _wait_healthy(h.runtime_url, token)
                handles.append(h)
            time.sleep(1)
            per_box = []
            for h in handles:
                pids = find_processes(arg=h.external_id, env_marker=h.external_id)
                per_box.append(sum(_pss_kib(pid) for pid in pids) / 1024)
        finally:
            for h in handles:
                backend.kill(h.external_id)
    return {
        "sandboxes": count,
        "total_mib": round(sum(per_box), 1),
        "per_sandbox_mib_p50": round(pct(per_box, 0.5), 1),
        "per_sandbox_mib_max": round(max(per_box), 1),
    }


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--idle", type=int, default=20)
    parser.add_argument("--out")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    import django

    django.setup()
    bare = bare_start(args.runs)
    deploys, executes = studio_deploys(args.runs)
    metrics = {
        "deploy_to_ready": summary_ms(deploys),
        "execute_202": summary_ms(executes),
        "idle_memory": idle_memory(args.idle),
    }
    baseline = {"bare_bwrap_runtime_healthy": summary_ms(bare)}
    ratio = metrics["deploy_to_ready"]["p50_ms"] / baseline["bare_bwrap_runtime_healthy"]["p50_ms"]
    emit(
        {
            "name": "deploy",
            "metrics": metrics,
            "baseline": baseline,
            "ratio": round(ratio, 2),
            "targets": {"ratio_max": 1.5, "deploy_p50_ms_max": 1000, "execute_202_ms": 100},
        },
        args.out,
    )


if __name__ == "__main__":
    main()
