"""Per-session state on disk, so runs survive a restart of the server that started them.

Layout under the state dir (``$AGENT_RUNTIME_STATE_DIR`` or ``$HOME/.agent_runtime``)::

    sessions/<session_id>/
        request.json   the execute body without ``env`` and ingest token (debugging)
        ingest.json    {"url", "token"}, mode 0600: lets a restarted server resend the spool
        pid            {"pid", "start_time"} of the run process (its pid is its process group)
        status.json    {"status", "created_at", "started_at", "finished_at",
                        "claude_session_id", "result", "error"}
        spool.jsonl    every log line, append-only, in seq order
        acked          the highest seq the studio has settled (accepted, or rejected as a bug)
        rejected.jsonl batches the studio refused with a 4xx (kept for the bug report)
        cancel         present once a cancel was asked for
        runner.log     stdout/stderr of the run process

Model credentials from ``env`` never touch the disk: the server hands them to the run process
on its stdin.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from .procs import process_start_time


def state_root(explicit: str | None = None) -> Path:
    """The state dir: the explicit one, ``$AGENT_RUNTIME_STATE_DIR``, or ``~/.agent_runtime``."""
    root = explicit or os.environ.get("AGENT_RUNTIME_STATE_DIR")
    return Path(root) if root else Path.home() / ".agent_runtime"


def now_iso() -> str:
    """The current UTC time as ISO 8601 with milliseconds."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def write_json_atomic(path: Path, payload: Any, mode: int = 0o644) -> None:
    """Write JSON so readers see the old or the new file, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(payload, f)
    os.replace(tmp, path)


def read_json(path: Path, default: Any = None) -> Any:
    """Read a JSON file, or return ``default`` when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


class SessionDir:
    """The on-disk state of one session; every reader and writer goes through here."""

    def __init__(self, root: Path, session_id: str):
        self.session_id = session_id
        self.path = root / "sessions" / session_id

    @classmethod
    def all(cls, root: Path) -> list[SessionDir]:
        """Every session found under the state root."""
        base = root / "sessions"
        if not base.is_dir():
            return []
        return [cls(root, p.name) for p in sorted(base.iterdir()) if p.is_dir()]

    def create(self) -> None:
        """Claim the session id; raises FileExistsError if it is taken (atomic mkdir)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.mkdir(mode=0o700)

    def exists(self) -> bool:
        """Whether this session was ever created here."""
        return self.path.is_dir()

    # status ------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The last written status record."""
        return read_json(self.path / "status.json", {}) or {}

    def update_status(self, **changes: Any) -> dict[str, Any]:
        """Merge changes into status.json (only one writer at a time: the run or the server)."""
        status = {**self.status(), **changes}
        write_json_atomic(self.path / "status.json", status)
        return status

    # process -----------------------------------------------------------------------------

    def write_pid(self, pid: int) -> None:
        """Record the run process (and its start time, so a reused pid is not mistaken)."""
        start = process_start_time(pid)
        write_json_atomic(self.path / "pid", {"pid": pid, "start_time": start})

    def pid(self) -> int | None:
        """The run process id, if one was started."""
        record = read_json(self.path / "pid")
        return record.get("pid") if record else None

    def is_alive(self) -> bool:
        """Whether the run process recorded for this session is still running."""
        record = read_json(self.path / "pid")
        if not record:
            return False
        start = process_start_time(record["pid"])
        return start is not None and record.get("start_time") in (start, None, "?")

    # cancel ------------------------------------------------------------------------------

    def mark_cancel(self) -> None:
        """Note that a cancel was asked for, so whoever finalizes reports ``cancelled``."""
        (self.path / "cancel").touch()

    def cancel_requested(self) -> bool:
        """Whether a cancel was asked for."""
        return (self.path / "cancel").exists()

    # spool -------------------------------------------------------------------------------

    @property
    def spool_path(self) -> Path:
        """The append-only JSONL spool of log lines."""
        return self.path / "spool.jsonl"

    def spool(self, after: int = 0) -> list[dict[str, Any]]:
        """Spooled records with seq > after; a torn last line (killed mid-write) is skipped."""
        records = []
        with contextlib.suppress(FileNotFoundError), self.spool_path.open("rb") as f:
            for raw in f:
                if not raw.endswith(b"\n"):
                    break
                record = json.loads(raw)
                if record["seq"] > after:
                    records.append(record)
        return records

    def repair_spool(self) -> int:
        """Drop a torn trailing record before appending; return the last complete seq."""
        try:
            data = self.spool_path.read_bytes()
        except FileNotFoundError:
            return 0
        end = data.rfind(b"\n") + 1
        if end != len(data):
            with self.spool_path.open("r+b") as f:
                f.truncate(end)
        last = data[:end].rstrip(b"\n").rsplit(b"\n", 1)[-1]
        return json.loads(last)["seq"] if last else 0

    def acked(self) -> int:
        """The highest seq the studio has settled."""
        try:
            return int((self.path / "acked").read_text() or 0)
        except (OSError, ValueError):
            return 0

    def set_acked(self, seq: int) -> None:
        """Record the settled seq (atomic replace; read by the server for ``last_seq_shipped``)."""
        tmp = self.path / f".acked.{os.getpid()}.tmp"
        tmp.write_text(str(seq))
        os.replace(tmp, self.path / "acked")

    def record_rejected(self, entry: dict[str, Any]) -> None:
        """Keep a batch the studio refused, for the bug report."""
        with (self.path / "rejected.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def ingest(self) -> dict[str, Any] | None:
        """Where to ship this session's lines: ``{"url", "token"}``."""
        return read_json(self.path / "ingest.json")

    def write_ingest(self, ingest: dict[str, Any]) -> None:
        """Store the ingest target (owner-only: it holds the session's ingest token)."""
        write_json_atomic(self.path / "ingest.json", ingest, mode=0o600)


def last_record(path: Path, tail: int = 256 * 1024) -> dict[str, Any] | None:
    """The last complete record of a JSONL file, reading only its tail when it can."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - tail))
            chunk = f.read()
    except FileNotFoundError:
        return None
    if size > tail and chunk.count(b"\n") < 2:  # one huge record: read it all, not guess
        chunk = path.read_bytes()
    complete = chunk[: chunk.rfind(b"\n") + 1].rstrip(b"\n")  # a torn tail is not a record
    last = complete.rsplit(b"\n", 1)[-1]
    return json.loads(last) if last else None
