"""Finding and killing a session's processes (Linux ``/proc``).

A run is more than its process group: the Claude Code CLI starts every Bash tool command in
a session of its own, and a tool can background or double-fork a process. So a session's
processes are those in the run's process group or session, plus any process whose
environment carries ``AGENT_RUNTIME_SESSION=<session id>`` (set by the server on the run
process and inherited by everything below it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

MARKER = "AGENT_RUNTIME_SESSION"


def _stat(pid: str) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_start_time(pid: int) -> str | None:
    """The kernel start time of a live, non-zombie process (None if gone), to spot pid reuse."""
    if not Path("/proc/self/stat").exists():  # no procfs: fall back to a signal probe
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return "?"
    fields = _stat(str(pid))
    if fields is None or fields[0] in ("Z", "X"):  # gone, or exited and awaiting its reaper
        return None
    return fields[19]


def group_members(pgid: int) -> list[int]:
    """Pids of the live (non-zombie) processes in a process group."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(entry.name)
            if fields and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                members.append(int(entry.name))
    return members


def session_processes(session_id: str, leader: int | None) -> list[int]:
    """Live processes belonging to a run: its group or session, or carrying its marker."""
    marker = f"{MARKER}={session_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        fields = _stat(entry.name)
        if not fields or fields[0] in ("Z", "X"):
            continue
        if leader and leader in (int(fields[2]), int(fields[3])):
            found.append(int(entry.name))
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return found


def kill_session(session_id: str, leader: int | None, grace: float = 1.5) -> bool:
    """SIGTERM a run's processes, SIGKILL what is left after ``grace``; True once none remain.

    Rescans between signals, so a process forked meanwhile is caught too. The grace is
    short because the CLI sometimes lingers on SIGTERM once its reader (the run) is gone.
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            pids = session_processes(session_id, leader)
            if not pids:
                return True
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            time.sleep(0.05)
    return not session_processes(session_id, leader)
