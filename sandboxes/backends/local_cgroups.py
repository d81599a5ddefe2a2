"""A cgroup per local sandbox: process count, memory and CPU weight, for all its processes.

Which cgroup version a host has is detected, not assumed: v2 when /sys/fs/cgroup itself is
the unified hierarchy (it has cgroup.controllers), else v1 with one hierarchy per
controller (the studio's machines: pids, memory and cpu under /sys/fs/cgroup/<controller>).

    <root>/agent-studio/             every sandbox; its CPU weight is below the studio's own
    <root>/agent-studio/<sandbox>/   one sandbox: pids.max, memory limit, the jail's processes

Limits, per sandbox:
- pids: v1 and v2 `pids.max`. A fork bomb stops at it (fork fails with EAGAIN).
- memory: v1 `memory.limit_in_bytes` (and `memory.memsw.limit_in_bytes` when swap is
  accounted), v2 `memory.max` with `memory.swap.max` 0. Both count the page cache of the
  sandbox's files and its /tmp (tmpfs), so writing files cannot grow past it either. Past
  the limit the kernel's OOM killer kills a process of the sandbox, not of the host.
- CPU: the parent group's weight (v1 `cpu.shares`, v2 `cpu.weight`) is SANDBOX_CPU_WEIGHT
  against the default 100 of everything else (1024 shares in v1), so under load every
  sandbox together gets a small share while a studio process wants the CPU, and all of it
  when the studio is idle.

The jail's first process joins the cgroup itself, as root, before privileges drop and before
any user code runs (local_launch.SETUP_SCRIPT), so everything it starts is counted. The
sandbox cannot leave: /sys is not in the jail and the files belong to root.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass

ROOT = "/sys/fs/cgroup"
PARENT = "agent-studio"
V1_CONTROLLERS = ("pids", "memory", "cpu")


def version() -> str | None:
    """ "v2", "v1" (pids, memory and cpu mounted separately), or None (no usable cgroups)."""
    if os.path.exists(os.path.join(ROOT, "cgroup.controllers")):
        return "v2"
    if all(os.path.isdir(os.path.join(ROOT, c)) for c in V1_CONTROLLERS):
        return "v1"
    return None


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _events(text: str) -> dict[str, int]:
    """`key value` lines (memory.events, pids.events, memory.oom_control) as a dict."""
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            out[key] = int(value)
    return out


@dataclass(frozen=True)
class Limits:
    pids_max: int = 512
    memory_bytes: int = 2 << 30
    cpu_weight: int = 20  # 1..10000, against the default 100


class Cgroups:
    """Creates, reads and removes the per-sandbox cgroups (root only)."""

    def __init__(self, limits: Limits, *, kind: str | None = None):
        self.limits = limits
        self.kind = kind if kind is not None else version()

    # -- paths

    def _dirs(self, name: str | None) -> list[str]:
        tail = [PARENT] if name is None else [PARENT, name]
        if self.kind == "v2":
            return [os.path.join(ROOT, *tail)]
        if self.kind == "v1":
            return [os.path.join(ROOT, c, *tail) for c in V1_CONTROLLERS]
        return []

    def _dir(self, name: str, controller: str) -> str:
        if self.kind == "v2":
            return os.path.join(ROOT, PARENT, name)
        return os.path.join(ROOT, controller, PARENT, name)

    def procs_files(self, name: str) -> list[str]:
        """The cgroup.procs files the jail's first process writes itself into."""
        return [os.path.join(d, "cgroup.procs") for d in self._dirs(name)]

    # -- lifecycle

    def _parent(self) -> None:
        shares = max(2, self.limits.cpu_weight * 1024 // 100)
        if self.kind == "v2":
            parent = os.path.join(ROOT, PARENT)
            os.makedirs(parent, exist_ok=True)
            for d in (ROOT, parent):
                with contextlib.suppress(OSError):  # already enabled, or not delegated
                    _write(os.path.join(d, "cgroup.subtree_control"), "+pids +memory +cpu")
            _write(os.path.join(parent, "cpu.weight"), str(self.limits.cpu_weight))
            return
        for d in self._dirs(None):
            os.makedirs(d, exist_ok=True)
        _write(os.path.join(ROOT, "cpu", PARENT, "cpu.shares"), str(shares))

    def create(self, name: str) -> list[str]:
        """Make the sandbox's cgroup with its limits; returns procs_files(name)."""
        if self.kind is None:
            return []
        self._parent()
        for d in self._dirs(name):
            os.makedirs(d, exist_ok=True)
        mem = str(self.limits.memory_bytes)
        if self.kind == "v2":
            d = self._dir(name, "")
            _write(os.path.join(d, "pids.max"), str(self.limits.pids_max))
            _write(os.path.join(d, "memory.max"), mem)
            with contextlib.suppress(OSError):
                _write(os.path.join(d, "memory.swap.max"), "0")
        else:
            _write(os.path.join(self._dir(name, "pids"), "pids.max"), str(self.limits.pids_max))
            memdir = self._dir(name, "memory")
            _write(os.path.join(memdir, "memory.limit_in_bytes"), mem)
            memsw = os.path.join(memdir, "memory.memsw.limit_in_bytes")
            if os.path.exists(memsw):
                _write(memsw, mem)  # no swap beyond the memory limit
        return self.procs_files(name)

    def pids(self, name: str) -> set[int]:
        """Every process in the sandbox's cgroup now."""
        found = set()
        for path in self.procs_files(name):
            for line in _read(path).split():
                found.add(int(line))
        return found

    def limits_hit(self, name: str) -> list[str]:
        """Which limits the sandbox has run into: "pids" (a fork was refused), "memory" (the
        OOM killer killed one of its processes, or allocations hit the limit)."""
        hit = []
        if self.kind == "v2":
            d = self._dir(name, "")
            if _events(_read(os.path.join(d, "pids.events"))).get("max", 0):
                hit.append("pids")
            mem = _events(_read(os.path.join(d, "memory.events")))
            if mem.get("oom_kill", 0) or mem.get("oom", 0):
                hit.append("memory")
        elif self.kind == "v1":
            pids_events = os.path.join(self._dir(name, "pids"), "pids.events")
            if _events(_read(pids_events)).get("max", 0):
                hit.append("pids")
            memdir = self._dir(name, "memory")
            oom = _events(_read(os.path.join(memdir, "memory.oom_control")))
            if oom.get("oom_kill", 0) or oom.get("under_oom", 0):
                hit.append("memory")
        return hit

    def remove(self, name: str, *, timeout: float = 5.0) -> bool:
        """rmdir the sandbox's cgroups (they must be empty: kill first). False if one stays."""
        deadline = time.monotonic() + timeout
        for d in self._dirs(name):
            while os.path.isdir(d):
                try:
                    os.rmdir(d)
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        return False
                    time.sleep(0.02)  # the last processes are still exiting
        return True
