"""The runtime's HTTP server (stdlib ``ThreadingHTTPServer``), listening on 8080 in a sandbox.

It holds no state that matters in memory: every session lives under the state dir, so a
restarted server reports runs it did not start, finalizes runs whose process died, and
resends spools the studio has not acknowledged.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from . import __version__
from .procs import kill_session
from .protocol import (
    FINAL_STATUSES,
    PROTOCOL_VERSION,
    SESSION_ID,
    ValidationError,
    validate_execute,
)
from .render import red
from .runner import drain_seconds, env_float, finish, shipper_for
from .state import SessionDir, last_record, now_iso

MAX_BODY = 10 * 1024 * 1024
SPARE_DELAY = 1.0  # seconds after a run takes the spare before the next one starts
SPARE_NICE = 10  # a spare warming up while a run is going; the run restores 0 if it may
PACKAGE_PARENT = Path(__file__).resolve().parent.parent


class ApiError(Exception):
    """An error answer: HTTP status, error code, message, optional details."""

    def __init__(self, status: int, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


class Runtime:
    """What the HTTP handler calls: sessions on disk, run processes, resends."""

    def __init__(self, *, state_dir: Path, workspace: Path, token: str | None, token_file: str):
        self.root, self.workspace = state_dir, workspace
        self._token, self._token_file = token, token_file
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._resending: set[str] = set()
        self._settled: set[str] = set()  # finished, delivered and dead: nothing more to do
        self._stop = threading.Event()
        self._keep_spare = os.environ.get("AGENT_RUNTIME_SPARE", "1") != "0"
        self._spare_lock = threading.Lock()
        self._spare: subprocess.Popen | None = None

    def start_spare(self, nice: int = 0) -> None:
        """Start a warm spare run process, unless one is there (see ``_spawn``)."""
        if not self._keep_spare or self._stop.is_set():
            return
        with self._spare_lock:
            if self._spare is None or self._spare.poll() is not None:
                self._spare = self._start_run_process()
                if nice:
                    with contextlib.suppress(OSError):
                        os.setpriority(os.PRIO_PROCESS, self._spare.pid, nice)

    # auth --------------------------------------------------------------------------------

    def token(self) -> str | None:
        """The bearer token, or None while the token file is not there yet."""
        if self._token is None and self._token_file:
            with contextlib.suppress(OSError):
                self._token = Path(self._token_file).read_text().strip() or None
        return self._token

    def check_auth(self, header: str | None) -> None:
        """Raise 503 before provisioning, 401 without the right bearer token."""
        expected = self.token()
        if expected is None:
            raise ApiError(503, "NotProvisioned", "the runtime token is not provisioned yet")
        scheme, _, given = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), expected.encode()
        ):
            raise ApiError(401, "Unauthorized", "missing or invalid bearer token")

    # sessions ----------------------------------------------------------------------------

    def _lock(self, session_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(session_id, threading.Lock())

    def _session(self, session_id: str) -> SessionDir:
        session = SessionDir(self.root, session_id)
        if not SESSION_ID.match(session_id) or not session.exists():
            raise ApiError(404, "NotFound", f"no session {session_id}")
        return session

    def execute(self, body: Any) -> dict[str, Any]:
        """Start a run in a detached process; return at once."""
        try:
            request = validate_execute(body)
        except ValidationError as exc:
            raise ApiError(400, "ValidationError", exc.message, {"field": exc.field}) from None
        session = SessionDir(self.root, request["session_id"])
        with self._lock(session.session_id):
            try:
                session.create()
            except FileExistsError:
                state = session.status().get("status", "starting")
                raise ApiError(
                    409, "SessionExists", f"session {session.session_id} is already {state}"
                ) from None
            session.write_ingest(request["ingest"])
            public = {k: v for k, v in request.items() if k not in ("env", "ingest")}
            (session.path / "request.json").write_text(json.dumps(public))
            session.update_status(
                session_id=session.session_id, status="starting", created_at=now_iso()
            )
            self._spawn(session, request)
        return self.view(session)

    def _start_run_process(self) -> subprocess.Popen:
        """A run process that imports the SDK, then waits on stdin for its request."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNTIME_TOKEN")}
        command = [sys.executable, "-m", "agent_runtime", "run", "--workspace", str(self.workspace)]
        with (self.root / "spare.log").open("ab") as log:
            # A new session makes the run its own process group: it outlives this server,
            # and cancel can kill the whole tree. cwd puts this package on the child's path.
            proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=log,
                cwd=PACKAGE_PARENT,
                env=env,
                start_new_session=True,
            )
        threading.Thread(target=self._reap, args=(proc,), daemon=True).start()
        return proc

    def _reap(self, proc: subprocess.Popen) -> None:
        proc.wait()
        self.start_spare()  # in case the spare itself died

    def _spawn(self, session: SessionDir, request: dict[str, Any]) -> None:
        # Importing the SDK takes about a second, so one run process is kept warm: this run
        # takes it and the next spare starts at once, niced so that its import yields the
        # CPU to this run's CLI.
        with self._spare_lock:
            proc, self._spare = self._spare, None
        # The next spare waits until this run's CLI has started (its import would compete for
        # the CPU with it); a run that ends sooner starts it itself (_reap).
        timer = threading.Timer(SPARE_DELAY, self.start_spare, kwargs={"nice": SPARE_NICE})
        timer.daemon = True
        timer.start()
        message = json.dumps({**request, "session_dir": str(session.path)}).encode()
        for attempt in range(2):
            if proc is None or proc.poll() is not None or attempt:
                proc = self._start_run_process()
            session.write_pid(proc.pid)
            assert proc.stdin is not None
            try:
                proc.stdin.write(message)  # credentials travel by pipe, never by disk
                proc.stdin.close()
                return
            except BrokenPipeError:  # the spare died meanwhile: take a fresh process
                continue

    def view(self, session: SessionDir) -> dict[str, Any]:
        """The public state of a session."""
        status = session.status()
        last = last_record(session.spool_path)
        answer = {
            "session_id": session.session_id,
            "status": status.get("status", "starting"),
            "pid": session.pid(),
            "alive": session.is_alive(),
            "last_seq": last["seq"] if last else 0,
            "last_seq_shipped": session.acked(),
            "claude_session_id": status.get("claude_session_id"),
            "created_at": status.get("created_at"),
            "started_at": status.get("started_at"),
            "finished_at": status.get("finished_at"),
            "error": status.get("error"),
        }
        if answer["status"] in FINAL_STATUSES:
            answer["result"] = status.get("result")
        return answer

    def get(self, session_id: str) -> dict[str, Any]:
        """``GET /sessions/{id}``."""
        return self.view(self._session(session_id))

    def cancel(self, session_id: str) -> tuple[int, dict[str, Any]]:
        """Kill the run's process tree and end the session ``cancelled`` (200 if already over)."""
        session = self._session(session_id)
        with self._lock(session_id):
            if session.status().get("status") in FINAL_STATUSES:
                return 200, {**self.view(session), "cancelled": False}
            session.mark_cancel()
            kill_session(session_id, session.pid())
            self._finalize_dead(session)
            self._resend(session)
        return 202, {**self.view(session), "cancelled": True}

    def _finalize_dead(self, session: SessionDir) -> None:
        """End a session whose run process is gone without a final status (call under lock)."""
        status = session.status()
        if status.get("status") in FINAL_STATUSES:
            return
        kill_session(session.session_id, session.pid())  # the CLI and tools a dead run left
        last = last_record(session.spool_path)
        if last and last["kind"] == "result":  # it finished, then died before status.json
            result = last["data"]
            session.update_status(status=result["status"], result=result, finished_at=now_iso())
            session.update_status(error=result.get("error"))
            return
        cancelled = session.cancel_requested()
        error = "cancelled by request" if cancelled else "the run process exited unexpectedly"
        result = {
            "status": "cancelled" if cancelled else "failed",
            "is_error": True,
            "subtype": None,
            "num_turns": None,
            "duration_ms": None,
            "total_cost_usd": None,
            "usage": None,
            "claude_session_id": status.get("claude_session_id"),
            "result": None,
            "error": error,
        }
        shipper = shipper_for(session, session.ingest())  # spools only; _resend ships
        shipper.emit("error", red(f"✗ {error}"), {"type": "error", "message": error})
        finish(session, shipper, result)
        shipper.close(0)

    def _resend(self, session: SessionDir) -> None:
        """Ship a dead run's unacknowledged lines from its spool, in the background."""
        if session.session_id in self._resending:
            return
        last = last_record(session.spool_path)
        if not last or session.acked() >= last["seq"]:
            return
        shipper = shipper_for(session, session.ingest())
        self._resending.add(session.session_id)

        def deliver() -> None:
            try:
                shipper.start().close(drain_seconds())
            finally:
                self._resending.discard(session.session_id)

        threading.Thread(target=deliver, name=f"resend-{session.session_id}", daemon=True).start()

    def reconcile(self) -> None:
        """Finalize runs whose process died and resend what they left undelivered."""
        for session in SessionDir.all(self.root):
            if session.session_id in self._settled:
                continue
            lock = self._lock(session.session_id)
            if not lock.acquire(blocking=False):
                continue  # execute or cancel is on it right now
            try:
                if session.is_alive():
                    continue
                self._finalize_dead(session)
                self._resend(session)
                last = last_record(session.spool_path)
                if session.session_id not in self._resending and (
                    not last or session.acked() >= last["seq"]
                ):
                    self._settled.add(session.session_id)
            finally:
                lock.release()

    def reconcile_forever(self) -> None:
        """Reconcile now and then every few seconds, until stopped."""
        interval = env_float("AGENT_RUNTIME_RECONCILE_SECONDS", 5.0)
        while not self._stop.is_set():
            try:
                self.reconcile()
            except Exception as exc:  # keep the loop alive; one bad session dir must not stop it
                print(f"reconcile failed: {exc!r}", file=sys.stderr)
            self._stop.wait(interval)

    def health(self) -> dict[str, Any]:
        """``GET /health``: versions (the program's, and the wire protocol's the studio checks),
        and whether runs are in flight."""
        running = [
            s.session_id
            for s in SessionDir.all(self.root)
            if s.status().get("status") not in FINAL_STATUSES and s.is_alive()
        ]
        return {
            "status": "healthy",
            "version": __version__,
            "protocol": PROTOCOL_VERSION,
            "busy": bool(running),
            "sessions": len(running),
            "running": running,
        }


class Handler(BaseHTTPRequestHandler):
    """Routes, auth and JSON errors; the work is in ``Runtime``."""

    runtime: Runtime
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        try:
            # Read every body, GET's too: one left unread on a kept-alive connection would
            # be parsed as the next request.
            raw = self._read_body()
            self.runtime.check_auth(self.headers.get("Authorization"))
            body = self._parse(raw) if method == "POST" else None
            status, payload = self._route(method, self.path.split("?", 1)[0].rstrip("/"), body)
        except ApiError as exc:
            status, payload = exc.status, {"error": exc.code, "message": exc.message}
            if exc.details:
                payload["details"] = exc.details
        except Exception as exc:  # a bug: answer 500 with JSON rather than a dropped socket
            status, payload = 500, {"error": "InternalError", "message": repr(exc)}
        self._send(status, payload)

    def _route(self, method: str, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        if method == "GET" and path == "/health":
            return 200, self.runtime.health()
        if method == "POST" and path == "/execute":
            return 202, self.runtime.execute(body)
        if len(parts) == 2 and parts[0] == "sessions" and method == "GET":
            return 200, self.runtime.get(parts[1])
        if len(parts) == 3 and parts[0] == "sessions" and parts[2] == "cancel" and method == "POST":
            return self.runtime.cancel(parts[1])
        raise ApiError(404, "NotFound", f"no route {method} {path}")

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True  # the unread body would corrupt the next request
            raise ApiError(413, "TooLarge", "request body too large")
        return self.rfile.read(length) if length else b""

    @staticmethod
    def _parse(raw: bytes) -> Any:
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            raise ApiError(400, "ValidationError", "body is not JSON", {"field": "body"}) from None

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def make_server(runtime: Runtime, host: str = "0.0.0.0", port: int = 8080) -> ThreadingHTTPServer:
    """Build the HTTP server for a runtime (not started)."""
    handler = type("BoundHandler", (Handler,), {"runtime": runtime})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def _exit(*_: Any) -> None:
    raise SystemExit(0)


def serve(*, host: str, port: int, workspace: Path, state_dir: Path) -> None:
    """Run the server until interrupted (the ``serve`` command)."""
    token = os.environ.get("RUNTIME_TOKEN") or None
    token_file = os.environ.get("RUNTIME_TOKEN_FILE", "")
    if not token and not token_file:
        raise SystemExit("agent_runtime: set RUNTIME_TOKEN or RUNTIME_TOKEN_FILE")
    workspace.mkdir(parents=True, exist_ok=True)
    (state_dir / "sessions").mkdir(parents=True, exist_ok=True)
    runtime = Runtime(state_dir=state_dir, workspace=workspace, token=token, token_file=token_file)
    threading.Thread(target=runtime.reconcile_forever, name="reconcile", daemon=True).start()
    runtime.start_spare()
    server = make_server(runtime, host, port)
    signal.signal(signal.SIGTERM, _exit)  # runs are detached: stopping the server spares them
    print(f"agent_runtime {__version__} listening on {host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        runtime._stop.set()
        server.server_close()
