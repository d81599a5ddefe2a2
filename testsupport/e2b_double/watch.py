"""Directory watchers for double sandboxes (envd's CreateWatcher / GetWatcherEvents).

envd reports inotify events. The double records the events of the file operations it performs
itself, in the order envd's own would raise them (an upload of a new file: CREATE, WRITE, then
CHMOD as the file is handed to its user), and finds what commands changed by comparing the
directory with a snapshot when the events are asked for.
"""

from __future__ import annotations

import os
import posixpath
import secrets
from dataclasses import dataclass, field

from e2b.envd.filesystem import filesystem_pb

CREATE = filesystem_pb.EventType.CREATE
WRITE = filesystem_pb.EventType.WRITE
REMOVE = filesystem_pb.EventType.REMOVE
RENAME = filesystem_pb.EventType.RENAME
CHMOD = filesystem_pb.EventType.CHMOD


@dataclass
class Watcher:
    path: str  # the watched directory, a resolved sandbox path
    recursive: bool
    include_entry: bool
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    events: list[tuple[str, int]] = field(default_factory=list)
    snapshot: dict[str, tuple] = field(default_factory=dict)

    def name_of(self, path: str) -> str | None:
        """The event name of a sandbox path (relative to the watched directory), or None
        if this watcher does not see it."""
        if not path.startswith(self.path.rstrip("/") + "/"):
            return None
        name = path[len(self.path.rstrip("/")) + 1 :]
        if "/" in name and not self.recursive:
            return None
        return name


def take_snapshot(watcher: Watcher, host_dir) -> dict[str, tuple]:
    found: dict[str, tuple] = {}
    for root, dirs, files in os.walk(host_dir):
        rel_root = os.path.relpath(root, host_dir)
        for name in dirs + files:
            rel = name if rel_root == "." else posixpath.join(rel_root, name)
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            found[rel] = (name in dirs, st.st_mtime_ns, st.st_size, st.st_ino)
        if not watcher.recursive:
            dirs.clear()
    return found


def diff(before: dict[str, tuple], after: dict[str, tuple]) -> list[tuple[str, int]]:
    """What changed between two snapshots, as (name, event type), in name order."""
    events = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old is None:
            events.append((name, CREATE))
            if not new[0] and new[2]:
                events.append((name, WRITE))
        elif new is None:
            events.append((name, REMOVE))
        elif old[1:3] != new[1:3]:
            events.append((name, WRITE))
    return events


def notify(sbx, path: str, kinds: tuple[int, ...]) -> None:
    """Record events the double's own file operations raise on `path` (a resolved sandbox
    path), and fold the change into each watcher's snapshot so it is reported once."""
    for watcher in list(sbx.watchers.values()):
        name = watcher.name_of(path)
        if name is None:
            continue
        watcher.events += [(name, kind) for kind in kinds]
        host = sbx.host_path(watcher.path)
        if host is not None:
            watcher.snapshot = take_snapshot(watcher, host)
