"""Concurrent agent runs on a real studio: every log complete, latency, cost per sandbox.

R agents (``--runs``, default 20), each deployed to its own local bubblewrap sandbox, run the
same multi-turn scripted-model conversation at once (the real Claude Code CLI running real Bash
tools, a steady stream of lines). A WebSocket watcher on each session records every line it
receives and when. Measured, in the same run as a baseline of ONE run alone (same script, same
studio, ``--baseline-runs`` times, medians):

- completeness: every session's log is seq 1..N exactly once, as the watcher received it, as
  ``GET /api/sessions/{id}/logs`` pages it and as the database holds it (N = the session's
  ``last_seq``; the last line is the result). Any incomplete log makes the script exit 1;
- line latency: the line's ``ts`` (stamped in the sandbox when the line was made; millisecond
  precision, the same clock as ours) -> received by the watcher, p50/p99;
- session wall time: POST execute -> the watcher has the last line, p50/p99;
- per sandbox: CPU seconds of the run (its processes plus the descendants they reaped) and peak
  memory (PSS, sampled every ``--sample`` s), found in /proc by the local backend's rule
  (``local_jail.find_processes``: its marker variable or its workspace in argv);
- the studio's processes: CPU seconds and peak RSS during the concurrent phase.

Runs start only once the sandboxes are idle (their warm run process is ready), so deploys and
warm-up are measured apart from the runs. Embedded studio (``runstudio``, SQLite, in-memory
layer) by default; ``--production`` runs ``manage.py serve`` (gunicorn, uvicorn workers) +
``celery -A studio worker`` + ``celery beat``
against PostgreSQL and Redis, on a throwaway database and an empty Redis database.

Prints ``{"name": "load", "metrics", "baseline", "ratio", "targets", "ok", ...}`` and writes it
to ``--out``. ``ratio`` = concurrent session wall p50 / solo wall p50 (what concurrency costs).

    .venv/bin/python bench/load.py [--runs 20] [--quick] [--production] [--out load.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import websockets  # noqa: E402

from agent_runtime.protocol import FINAL_STATUSES  # noqa: E402
from bench.common import embedded_studio, emit, pct  # noqa: E402

MARKER = "[[load]]"

CLK_TCK = os.sysconf("SC_CLK_TCK")
SANDBOX_MARKER = "AGENT_STUDIO_SANDBOX"  # sandboxes.backends.local.MARKER (no Django here)
TARGETS = {
    "all_logs_complete": True,
    "latency_p99_ms_max": 1000,  # a watcher sees a line within a second
    # Concurrency may cost what the cores force (cpu_floor_ratio), plus half again.
    "ratio_over_cpu_floor_max": 1.5,
}


def load_script(*, turns: int = 6, texts: int = 3, echo_lines: int = 5, pause: float = 0.15):
    """The conversation every run plays: ``turns`` model turns, each ``texts`` text blocks
    ``pause`` s apart (each block is its own log line) then a Bash call that prints
    ``echo_lines`` lines; then a final answer. About ``turns * (texts + 2) + 3`` log lines."""
    steps = []
    for t in range(1, turns + 1):
        blocks = []
        for k in range(1, texts + 1):
            blocks.append({"type": "text", "text": f"Step {t}.{k}: looking at part {k}."})
            blocks.append({"type": "delay", "seconds": pause})
        command = f'for i in $(seq 1 {echo_lines}); do echo "step {t} line $i"; sleep 0.02; done'
        blocks.append({"type": "tool_use", "name": "Bash", "input": {"command": command}})
        steps.append(blocks)
    steps.append([{"type": "text", "text": "All steps done."}])
    return {"marker": MARKER, "turns": steps}


def model_env(base_url: str) -> dict[str, str]:
    return {
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": "sk-ant-bench-model-key-0123456789",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDE_CODE_DISABLE_EXPERIMENTAL_BETAS": "1",
        "CLAUDE_CODE_MAX_RETRIES": "1",
    }


# ---- studios ---------------------------------------------------------------------------


@dataclass
class Studio:
    base: str
    token: str
    data_dir: str
    roots: dict[str, int]  # studio process name -> pid
    db: str  # "sqlite:<path>" or a PostgreSQL URL
    mode: str

    @property
    def sandbox_dir(self) -> str:
        return os.path.join(self.data_dir, "sandboxes")


def _pids_with_args(*needles: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            args = [a.decode(errors="replace") for a in argv]
            if all(n in args for n in needles):
                found.append(int(entry))
    return found


@contextmanager
def embedded(extra_env: dict[str, str]):
    """``bench.common.embedded_studio``, plus its process id and database path."""
    with embedded_studio(extra_env) as (base, token, data):
        port = urlsplit(base).port
        pids = _pids_with_args("runstudio", str(port))
        yield Studio(
            base=base,
            token=token,
            data_dir=data,
            roots={"runstudio": pids[0]},
            db="sqlite:" + os.path.join(data, "studio.sqlite3"),
            mode="embedded",
        )


def _free_redis_db(url: str) -> str:
    """An empty Redis database (15 down to 8) so no other worker shares our queues."""
    import redis

    for number in range(15, 7, -1):
        candidate = urlunsplit(urlsplit(url)._replace(path=f"/{number}"))
        if redis.Redis.from_url(candidate).dbsize() == 0:
            return candidate
    raise RuntimeError("no empty Redis database between 8 and 15")


@contextmanager
def production(extra_env: dict[str, str]):
    """``manage.py serve`` + celery worker + celery beat on a throwaway PostgreSQL database."""
    import psycopg
    import redis

    from studio.testing.servers import free_port, wait_http

    base_db = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(base_db)
    name = f"studio_load_{uuid.uuid4().hex[:8]}"
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    db_url = urlunsplit(parts._replace(path="/" + name))
    redis_url = _free_redis_db(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    data = tempfile.mkdtemp(prefix="studio-load-")
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "bench-load-" + "k" * 60,
        "INTERNAL_API_KEY": "bench-load-internal-key",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DEBUG": "false",
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_COOKIES": "false",
        "STUDIO_DATA_DIR": data,
        "BACKEND_API_URL": f"http://127.0.0.1:{port}",
        "LOG_LEVEL": "WARNING",
        **extra_env,
    }
    py = sys.executable
    procs: dict[str, subprocess.Popen] = {}
    log = open(Path(data) / "studio.log", "wb")  # noqa: SIM115 - closed below
    try:
        subprocess.run([py, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        token = _make_token(env)
        celery = [py, "-m", "celery", "-A", "studio"]
        commands = {
            # The web tier as docker-compose runs it: gunicorn, a uvicorn worker per core, pooled.
            "web": ["env", "DATABASE_POOL=true", py, "manage.py", "serve", "--port", str(port)],
            "worker": [*celery, "worker", "--loglevel=WARNING", "--concurrency=4"],
            "beat": [
                *celery,
                "beat",
                "--loglevel=WARNING",
                f"--schedule={data}/celerybeat-schedule",
            ],
        }
        for label, cmd in commands.items():
            procs[label] = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/healthz", process=procs["web"])
        yield Studio(
            base=base,
            token=token,
            data_dir=data,
            roots={label: p.pid for label, p in procs.items()},
            db=db_url,
            mode="production",
        )
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        log.close()
        kill_sandboxes(data)
        with psycopg.connect(maintenance, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        redis.Redis.from_url(redis_url).flushdb()
        import shutil

        shutil.rmtree(data, ignore_errors=True)


def _make_token(env: dict[str, str]) -> str:
    code = (
        "from django.contrib.auth.models import User;"
        "from rest_framework.authtoken.models import Token;"
        "u=User.objects.create_user('bench','','bench-pass-1');"
        "print(Token.objects.create(user=u).key)"
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def kill_sandboxes(data_dir: str) -> list[str]:
    """SIGKILL every process of every sandbox under ``data_dir``; the ids that had any."""
    from sandboxes.backends import local_jail

    root = Path(data_dir) / "sandboxes"
    killed = []
    for box in sorted(root.iterdir()) if root.is_dir() else []:

        def find(box=box):
            return local_jail.find_processes(
                arg=str(box / "workspace"), env_marker=f"{SANDBOX_MARKER}={box.name}"
            )

        if find():
            killed.append(box.name)
            local_jail.kill_until_gone(find)
    return killed


# ---- /proc sampling (in a process of its own, so it never delays the watchers) -----------


def _stat(pid: int) -> tuple[int, float, float] | None:
    """(ppid, own CPU s, reaped children's CPU s) from /proc/<pid>/stat."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    ticks = [int(f) for f in fields[11:15]]  # utime stime cutime cstime
    return int(fields[1]), (ticks[0] + ticks[1]) / CLK_TCK, (ticks[2] + ticks[3]) / CLK_TCK


def _kib(pid: int, path: str, key: str) -> int:
    try:
        with open(f"/proc/{pid}/{path}") as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _sandbox_of(pid: int, sandbox_dir: str) -> str | None:
    """The sandbox a process belongs to, by find_processes' rule: the marker variable in its
    environment, or a sandbox workspace among its arguments."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        environ = b""
    prefix = SANDBOX_MARKER.encode() + b"="
    for item in environ.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix) :].decode()
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    head = sandbox_dir.rstrip("/") + "/"
    for arg in argv:
        text = arg.decode(errors="replace")
        if text.startswith(head) and text.endswith("/workspace"):
            return text[len(head) :].split("/")[0]
    return None


def snapshot(roots: dict[str, int], sandbox_dir: str, *, memory: bool) -> dict:
    """CPU (and memory) of each studio process group and each sandbox, right now."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st:
                stats[int(entry)] = st
    root_of = {pid: name for name, pid in roots.items()}
    groups: dict[str, dict] = {}
    for pid in stats:
        chain, p = [], pid
        while p and p not in root_of and p in stats and len(chain) < 64:
            chain.append(p)
            p = stats[p][0]
        if p not in root_of:
            continue
        box = _sandbox_of(pid, sandbox_dir) if pid != p else None
        if box:
            group = groups.setdefault("sandbox:" + box, {"cpu_s": 0.0, "kib": 0, "pids": 0})
            # Own time plus reaped descendants': what ran and exited in the jail is counted
            # once, by whoever waited for it (the jail's init reaps orphans).
            group["cpu_s"] += stats[pid][1] + stats[pid][2]
            if memory:
                group["kib"] += _kib(pid, "smaps_rollup", "Pss:")
        else:
            group = groups.setdefault("studio:" + root_of[p], {"cpu_s": 0.0, "kib": 0, "pids": 0})
            group["cpu_s"] += stats[pid][1]  # own only: sandboxes are not reaped meanwhile
            if memory:
                group["kib"] += _kib(pid, "status", "VmRSS:")
        group["pids"] += 1
    return {"t": time.time(), "groups": groups}


def _sampler_main(conn, roots: dict[str, int], sandbox_dir: str, interval: float) -> None:
    peaks: dict[str, int] = {}
    while True:
        snap = snapshot(roots, sandbox_dir, memory=True)
        for name, group in snap["groups"].items():
            peaks[name] = max(peaks.get(name, 0), group["kib"])
        if conn.poll(interval):
            command = conn.recv()
            if command == "snap":
                conn.send(snapshot(roots, sandbox_dir, memory=True))
            elif command == "peaks":
                conn.send(peaks)
                peaks = {}
            elif command == "stop":
                conn.send(peaks)
                return


class Sampler:
    """A child process sampling /proc every ``interval`` s; ``snap()`` for a reading now,
    ``peaks()`` for the peak memory of each group since the last call."""

    def __init__(self, studio: Studio, interval: float = 1.0):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=_sampler_main,
            args=(child, studio.roots, studio.sandbox_dir, interval),
            daemon=True,
        )
        self.proc.start()

    def _ask(self, command: str):
        self.conn.send(command)
        return self.conn.recv()

    def snap(self) -> dict:
        return self._ask("snap")

    def peaks(self) -> dict:
        return self._ask("peaks")

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self._ask("stop")
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()


def sandbox_cpu(snap: dict) -> float:
    return sum(g["cpu_s"] for n, g in snap["groups"].items() if n.startswith("sandbox:"))


def wait_idle(sampler: Sampler, *, cores: float = 0.1, timeout: float = 90) -> float:
    """Wait until the sandboxes together use under ``cores`` CPU; seconds waited."""
    start = time.monotonic()
    before = sampler.snap()
    while time.monotonic() - start < timeout:
        time.sleep(1.0)
        after = sampler.snap()
        rate = (sandbox_cpu(after) - sandbox_cpu(before)) / (after["t"] - before["t"])
        if rate < cores:
            break
        before = after
    return time.monotonic() - start


# ---- watching and running ---------------------------------------------------------------


def parse_ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass
class Run:
    agent_id: str
    session_id: str = ""
    started: float = 0.0  # time.time() just before POST execute
    lines: list[dict] = field(default_factory=list)  # every line received, in order
    received: list[float] = field(default_factory=list)  # time.time() of each
    state: dict = field(default_factory=dict)
    socket_failures: list[str] = field(default_factory=list)
    stored: dict[int, float] = field(default_factory=dict)  # seq -> stored at (database)
    error: str | None = None

    @property
    def last_received(self) -> float | None:
        return self.received[-1] if self.received else None


async def watch(
    studio: Studio, run: Run, *, timeout: float, linger: float = 0.5, retries: int = 5
) -> None:
    """Record every line of the session until it is final and the watcher holds its last
    line (plus ``linger`` s, to catch a late duplicate), or ``timeout``. Like the browser's
    terminal, a failed or dropped socket reconnects with ``?after=<last seq received>``; each
    failure is recorded in ``run.socket_failures``."""
    ws_base = studio.base.replace("http", "ws", 1)
    headers = {"Authorization": f"Token {studio.token}"}
    deadline = time.monotonic() + timeout
    done_at = None
    while done_at is None or time.monotonic() < done_at:
        after = max((line["seq"] for line in run.lines), default=0)
        url = f"{ws_base}/ws/sessions/{run.session_id}/?after={after}"
        attempt = time.monotonic()
        try:
            async with websockets.connect(
                url, additional_headers=headers, origin=studio.base, max_size=2**24
            ) as ws:
                while True:
                    left = (done_at or deadline) - time.monotonic()
                    if left <= 0:
                        break
                    try:
                        raw = await asyncio.wait_for(ws.recv(), left)
                    except TimeoutError:
                        break
                    now = time.time()
                    message = json.loads(raw)
                    if message["type"] == "lines":
                        for line in message["lines"]:
                            run.lines.append(line)
                            run.received.append(now)
                    elif message["type"] == "session":
                        run.state = message["session"]
                    top = max((line["seq"] for line in run.lines), default=0)
                    last = run.state.get("last_seq") or 0
                    final = run.state.get("status") in FINAL_STATUSES
                    if done_at is None and final and top >= last > 0:
                        done_at = time.monotonic() + linger
        except Exception as exc:  # a broken socket is a finding, not a crash of the bench
            took = time.monotonic() - attempt
            run.socket_failures.append(f"{type(exc).__name__} after {took:.1f}s: {exc}")
            if len(run.socket_failures) > retries:
                run.error = f"watcher: gave up after {retries} reconnects"
                return
            await asyncio.sleep(0.5)
        if time.monotonic() >= deadline:
            break
    if done_at is None:
        run.error = f"watcher: session not final with all lines within {timeout}s"


async def _api(client: httpx.AsyncClient, method: str, path: str, **kw) -> dict:
    res = await client.request(method, path, **kw)
    if res.status_code >= 400:
        raise RuntimeError(f"{method} {path}: {res.status_code} {res.text[:300]}")
    return res.json()


async def deploy_agents(studio: Studio, count: int, *, timeout: float = 180) -> list[dict]:
    """``count`` agents, each deployed and ready; their sandboxes (with ``ready_s``)."""
    headers = {"Authorization": f"Token {studio.token}"}
    async with httpx.AsyncClient(base_url=studio.base, headers=headers, timeout=60) as client:

        async def one(i: int) -> dict:
            agent = await _api(client, "POST", "/api/agents/", json={"name": f"load-{i}"})
            started = time.monotonic()
            await _api(client, "POST", f"/api/agents/{agent['id']}/deploy", json={})
            while time.monotonic() - started < timeout:
                body = await _api(client, "GET", f"/api/agents/{agent['id']}/sandbox")
                box = body["deployment"]
                if box["status"] == "ready":
                    return {**box, "agent_id": agent["id"], "ready_s": time.monotonic() - started}
                if box["status"] in ("failed", "stopped", "expired"):
                    raise RuntimeError(f"deploy failed: {box}")
                await asyncio.sleep(0.1)
            raise TimeoutError(f"agent {agent['id']} not ready in {timeout}s")

        return list(await asyncio.gather(*(one(i) for i in range(count))))


async def stop_agents(studio: Studio, boxes: list[dict]) -> None:
    headers = {"Authorization": f"Token {studio.token}"}
    async with httpx.AsyncClient(base_url=studio.base, headers=headers, timeout=60) as client:
        for box in boxes:
            with contextlib.suppress(httpx.HTTPError):
                await client.post(f"/api/agents/{box['agent_id']}/stop")


async def run_all(studio: Studio, boxes: list[dict], *, timeout: float = 300) -> list[Run]:
    """POST execute on every agent at once, each watched from its 202 on."""
    headers = {"Authorization": f"Token {studio.token}"}
    limits = httpx.Limits(max_connections=len(boxes) + 4)
    async with httpx.AsyncClient(
        base_url=studio.base, headers=headers, timeout=120, limits=limits
    ) as client:

        async def one(box: dict) -> Run:
            run = Run(agent_id=box["agent_id"])
            run.started = time.time()
            try:
                body = await _api(
                    client,
                    "POST",
                    f"/api/agents/{run.agent_id}/execute",
                    json={"prompt": f"{MARKER} run the steps"},
                )
            except Exception as exc:
                run.error = f"execute: {exc!r}"
                return run
            run.session_id = body["session_id"]
            await watch(studio, run, timeout=timeout)
            return run

        return list(await asyncio.gather(*(one(box) for box in boxes)))


# ---- completeness -----------------------------------------------------------------------


async def api_lines(studio: Studio, session_id: str) -> tuple[dict, list[dict]]:
    headers = {"Authorization": f"Token {studio.token}"}
    lines: list[dict] = []
    async with httpx.AsyncClient(base_url=studio.base, headers=headers, timeout=60) as client:
        session = await _api(client, "GET", f"/api/sessions/{session_id}/")
        after = 0
        while True:
            page = await _api(
                client, "GET", f"/api/sessions/{session_id}/logs?after={after}&limit=500"
            )
            lines += page["lines"]
            if not page["lines"] or page["next_after"] in (None, after):
                break
            after = page["next_after"]
    return session, lines


def db_lines(studio: Studio, session_ids: list[str]) -> dict[str, list[tuple[int, float]]]:
    """session id -> [(seq, stored at)] for every row, straight from the database."""
    sql = "SELECT session_id, seq, created_at FROM logs_logline WHERE session_id IN ({})"
    found: dict[str, list[tuple[int, float]]] = {s: [] for s in session_ids}
    if studio.db.startswith("sqlite:"):
        keys = {uuid.UUID(s).hex: s for s in session_ids}  # Django stores UUIDs as hex there
        conn = sqlite3.connect(f"file:{studio.db[7:]}?mode=ro", uri=True, timeout=30)
        try:
            rows = conn.execute(sql.format(",".join("?" * len(keys))), list(keys)).fetchall()
        finally:
            conn.close()
        for sid, seq, created in rows:
            stored = datetime.fromisoformat(created).replace(tzinfo=UTC).timestamp()
            found[keys[sid]].append((seq, stored))
        return found
    import psycopg

    with psycopg.connect(studio.db) as conn:
        rows = conn.execute(sql.format(",".join(["%s"] * len(session_ids))), session_ids)
        for sid, seq, created in rows.fetchall():
            found[str(sid)].append((seq, created.timestamp()))
    return found


def log_problems(
    *, last_seq: int, status: str, watched: list[dict], stored: list[dict], db_seqs: list[int]
) -> list[str]:
    """Why a session's log is not complete: ``watched`` (what the watcher received, in
    order), ``stored`` (the API's pages) and ``db_seqs`` (the rows) must each be seq
    1..last_seq exactly once, the texts must agree and the last line must be the result."""
    problems = []
    expected = list(range(1, last_seq + 1))
    seen = [line["seq"] for line in watched]
    dupes = sorted(s for s, c in Counter(seen).items() if c > 1)
    missing = sorted(set(expected) - set(seen))
    extra = sorted(set(seen) - set(expected))
    if status != "completed":
        problems.append(f"status {status}")
    if last_seq < 1:
        problems.append("no lines")
    if dupes or missing or extra:
        problems.append(
            f"watcher: missing {missing[:20]} duplicated {dupes[:20]} extra {extra[:20]}"
        )
    if seen != sorted(seen):
        problems.append("watcher: lines out of order")
    if [line["seq"] for line in stored] != expected:
        problems.append(f"api: {len(stored)} lines, not seq 1..{last_seq}")
    by_seq = {line["seq"]: line["text"] for line in watched}
    if any(by_seq.get(line["seq"]) != line["text"] for line in stored):
        problems.append("api and watcher texts differ")
    if stored and stored[-1]["kind"] != "result":
        problems.append(f"last line is {stored[-1]['kind']}, not the result")
    if sorted(db_seqs) != expected:
        problems.append(f"db: {len(db_seqs)} rows, {len(set(db_seqs))} seqs, not 1..{last_seq}")
    return problems


def check_runs(studio: Studio, runs: list[Run]) -> list[dict]:
    """One report per run: complete or not, and why not (gaps, duplicates, mismatches)."""
    rows = db_lines(studio, [r.session_id for r in runs if r.session_id])
    reports = []
    for run in runs:
        problems = [run.error] if run.error else []
        report = {"session": run.session_id, "agent": run.agent_id}
        if run.session_id:
            session, stored = asyncio.run(api_lines(studio, run.session_id))
            run.stored = dict(rows[run.session_id])
            problems += log_problems(
                last_seq=session["last_seq"],
                status=session["status"],
                watched=run.lines,
                stored=stored,
                db_seqs=[seq for seq, _ in rows[run.session_id]],
            )
            if session["status"] != "completed":
                problems.append(f"session error: {session.get('error')}")
            report.update(
                status=session["status"], last_seq=session["last_seq"], received=len(run.lines)
            )
        if run.socket_failures:
            report["socket_failures"] = run.socket_failures
        report["complete"] = not problems
        report["problems"] = problems
        reports.append(report)
    return reports


# ---- one measured phase -----------------------------------------------------------------


def phase(studio: Studio, sampler: Sampler, boxes: list[dict], *, timeout: float) -> dict:
    """Run every box's agent once, concurrently; measurements and completeness reports."""
    wait_idle(sampler)
    sampler.peaks()  # reset: the peaks below are this phase's
    before = sampler.snap()
    runs = asyncio.run(run_all(studio, boxes, timeout=timeout))
    time.sleep(1.0)  # the run processes exit and are reaped
    after = sampler.snap()
    peaks = sampler.peaks()
    reports = check_runs(studio, runs)
    latencies, to_store, to_watcher, walls = [], [], [], []
    for run in runs:
        for line, received in zip(run.lines, run.received, strict=True):
            made, stored = parse_ts(line["ts"]), run.stored.get(line["seq"])
            latencies.append(received - made)
            if stored is not None:
                to_store.append(stored - made)
                to_watcher.append(received - stored)
        if run.last_received and not run.error:
            walls.append(run.last_received - run.started)
    boxes_cpu, boxes_pss = [], []
    for box in boxes:
        key = "sandbox:" + box["external_id"]
        cpu = after["groups"].get(key, {}).get("cpu_s", 0) - before["groups"].get(key, {}).get(
            "cpu_s", 0
        )
        boxes_cpu.append(cpu)
        boxes_pss.append(peaks.get(key, 0) / 1024)
    studio_groups = {}
    for name in studio.roots:
        key = "studio:" + name
        studio_groups[name] = {
            "cpu_s": round(
                after["groups"].get(key, {}).get("cpu_s", 0)
                - before["groups"].get(key, {}).get("cpu_s", 0),
                2,
            ),
            "rss_peak_mib": round(peaks.get(key, 0) / 1024, 1),
        }
    return {
        "runs": runs,
        "reports": reports,
        "elapsed_s": after["t"] - before["t"],
        "latencies": latencies,
        "to_store": to_store,
        "to_watcher": to_watcher,
        "walls": walls,
        "sandbox_cpu_s": boxes_cpu,
        "sandbox_pss_peak_mib": boxes_pss,
        "studio": studio_groups,
    }


def _ms(values: list[float]) -> dict:
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "p50_ms": round(pct(ms, 0.5), 1),
        "p99_ms": round(pct(ms, 0.99), 1),
        "max_ms": round(max(ms), 1) if ms else None,
    }


def _summary(values: list[float], unit: str, digits: int = 2) -> dict:
    return {
        f"p50_{unit}": round(pct(values, 0.5), digits),
        f"max_{unit}": round(max(values), digits) if values else None,
        f"total_{unit}": round(sum(values), digits),
    }


def _kinds(failures: list[str]) -> dict:
    kinds: dict[str, list] = {}
    for failure in failures:
        entry = kinds.setdefault(failure.split(" ", 1)[0], [0, failure[:300]])
        entry[0] += 1
    return kinds


def summarise(result: dict) -> dict:
    lines = sum(len(r.lines) for r in result["runs"])
    return {
        "sessions": len(result["runs"]),
        "complete_sessions": sum(r["complete"] for r in result["reports"]),
        "lines_received": lines,
        "lines_per_s": round(lines / result["elapsed_s"], 1) if result["elapsed_s"] else None,
        "line_latency": _ms(result["latencies"]),
        # The same, split at the database row's created_at: sandbox -> stored -> watcher.
        "line_to_stored": _ms(result["to_store"]),
        "stored_to_watcher": _ms(result["to_watcher"]),
        "socket_failures": sum(len(r.socket_failures) for r in result["runs"]),
        # What went wrong, by exception type: (count, one example).
        "socket_failure_kinds": _kinds([f for r in result["runs"] for f in r.socket_failures]),
        "session_wall": _ms(result["walls"]),
        "sandbox_cpu_s": _summary(result["sandbox_cpu_s"], "s"),
        "sandbox_pss_peak_mib": _summary(result["sandbox_pss_peak_mib"], "mib", 1),
        "studio": result["studio"],
    }


# ---- the whole benchmark ------------------------------------------------------------------


def run_load(
    *,
    runs: int = 20,
    baseline_runs: int = 3,
    production_mode: bool = False,
    script: dict | None = None,
    timeout: float = 300,
    sample_interval: float = 1.0,
) -> dict:
    """Deploy, run solo (baseline) then ``runs`` at once, check every log; the report."""
    from agent_runtime.scripted_model import ScriptedModel

    script = script or load_script()
    model = ScriptedModel([script])
    model_url = model.start()
    extra = {**model_env(model_url), "SANDBOX_MAX_LIVE_PER_USER": str(runs + 5)}
    studio_cm = production(extra) if production_mode else embedded(extra)
    load_before = os.getloadavg()
    try:
        with studio_cm as studio:
            sampler = Sampler(studio, interval=sample_interval)
            try:
                return _measure(studio, sampler, runs, baseline_runs, timeout, load_before)
            except BaseException:
                log = Path(studio.data_dir) / "studio.log"
                if log.exists():  # the studio's side of the failure
                    sys.stderr.write(log.read_text(errors="replace")[-5000:])
                raise
            finally:
                sampler.close()
                kill_sandboxes(studio.data_dir)
    finally:
        model.stop()


def _measure(studio, sampler, runs, baseline_runs, timeout, load_before) -> dict:
    solo_boxes = asyncio.run(deploy_agents(studio, 1)) if baseline_runs else []
    solo = []
    try:
        for _ in range(baseline_runs):
            solo.append(phase(studio, sampler, solo_boxes, timeout=timeout))
    finally:
        asyncio.run(stop_agents(studio, solo_boxes))
    deploy_started = time.monotonic()
    boxes = asyncio.run(deploy_agents(studio, runs))
    deploy_all_s = time.monotonic() - deploy_started
    try:
        idle_s = wait_idle(sampler)
        loaded = phase(studio, sampler, boxes, timeout=timeout)
    finally:
        asyncio.run(stop_agents(studio, boxes))
    load_after = os.getloadavg()

    reports = loaded["reports"] + [r for s in solo for r in s["reports"]]
    incomplete = [r for r in reports if not r["complete"]]
    metrics = summarise(loaded)
    metrics["deploy"] = {
        "sandboxes": runs,
        "all_ready_s": round(deploy_all_s, 2),
        "ready_p50_s": round(pct([b["ready_s"] for b in boxes], 0.5), 2),
        "idle_after_s": round(idle_s, 1),
    }
    baseline = None
    if solo:
        merged = {
            "runs": [r for s in solo for r in s["runs"]],
            "reports": [r for s in solo for r in s["reports"]],
            "elapsed_s": sum(s["elapsed_s"] for s in solo),
            "latencies": [x for s in solo for x in s["latencies"]],
            "to_store": [x for s in solo for x in s["to_store"]],
            "to_watcher": [x for s in solo for x in s["to_watcher"]],
            "walls": [x for s in solo for x in s["walls"]],
            "sandbox_cpu_s": [x for s in solo for x in s["sandbox_cpu_s"]],
            "sandbox_pss_peak_mib": [x for s in solo for x in s["sandbox_pss_peak_mib"]],
            "studio": solo[-1]["studio"],
        }
        baseline = {"solo_runs": len(solo), **summarise(merged)}
    wall, base_wall = metrics["session_wall"]["p50_ms"], (baseline or {}).get("session_wall", {})
    ratio = round(wall / base_wall["p50_ms"], 2) if base_wall.get("p50_ms") else None
    # What perfect sharing of this machine's cores would give: all the CPU the runs and the
    # studio used, spread over the cores, against one run alone.
    used = metrics["sandbox_cpu_s"]["total_s"] + sum(g["cpu_s"] for g in metrics["studio"].values())
    floor = None
    if base_wall.get("p50_ms"):
        floor = round(max(1.0, used / (os.cpu_count() or 1) * 1000 / base_wall["p50_ms"]), 2)
    metrics["cpu_floor_ratio"] = floor
    metrics["studio_cpu_ms_per_line"] = round(
        sum(g["cpu_s"] for g in metrics["studio"].values())
        * 1000
        / max(1, metrics["lines_received"]),
        2,
    )
    checks = {
        "all_logs_complete": not incomplete,
        "latency_p99_ms_max": metrics["line_latency"]["p99_ms"] <= TARGETS["latency_p99_ms_max"],
        "ratio_over_cpu_floor_max": (
            ratio is not None
            and floor is not None
            and ratio / floor <= TARGETS["ratio_over_cpu_floor_max"]
        ),
    }
    return {
        "name": "load",
        "mode": studio.mode,
        "metrics": metrics,
        "baseline": baseline,
        "ratio": ratio,
        "ratio_means": "concurrent session wall p50 / one run alone",
        "targets": TARGETS,
        "met": checks,
        "ok": all(checks.values()),
        "complete": not incomplete,
        "incomplete": incomplete,
        "config": {
            "runs": runs,
            "baseline_runs": baseline_runs,
            "lines_per_session": metrics["lines_received"] // max(1, runs),
            "script_turns": None,
            "cpus": os.cpu_count(),
            # Everything shares this machine's cores with whatever else runs on it.
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="concurrent runs (default 20)")
    parser.add_argument("--baseline-runs", type=int, default=3, help="solo runs (medians)")
    parser.add_argument("--quick", action="store_true", help="5 runs, 1 solo, a short script")
    parser.add_argument("--production", action="store_true", help="serve + celery + PG/Redis")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per session")
    parser.add_argument("--sample", type=float, default=1.0, help="/proc sampling interval")
    parser.add_argument("--out")
    args = parser.parse_args()
    script = load_script()
    if args.quick:
        args.runs, args.baseline_runs = min(args.runs, 5), 1
        script = load_script(turns=3)
    result = run_load(
        runs=args.runs,
        baseline_runs=args.baseline_runs,
        production_mode=args.production,
        script=script,
        timeout=args.timeout,
        sample_interval=args.sample,
    )
    result["config"]["script_turns"] = len(script["turns"])
    emit(result, args.out)
    if not result["complete"]:
        sys.stderr.write(f"load: {len(result['incomplete'])} incomplete log(s)\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
