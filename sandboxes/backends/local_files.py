"""Host-side file access to a local sandbox's workspace that never leaves it.

The studio runs as root on the host and the sandbox can plant any symlink in its workspace
(`/workspace/x -> /etc/shadow`, `-> ../../<other sandbox>/workspace`). So paths are never
handed to the kernel as strings: we walk them one component at a time from an fd on the
workspace root with O_NOFOLLOW, and resolve each symlink ourselves the way the sandbox would
see it (absolute targets are sandbox paths, so only `/workspace/...` stays inside; `..` may
not climb above the root). Anything that leaves raises PathOutsideWorkspace. If the sandbox
swaps a directory for a symlink while we walk, O_NOFOLLOW makes the open fail and we resolve
again, so a race can only end in a clear error (FileNotFound if the path is gone at that
instant, PathChanged if it keeps changing), never outside the workspace and never an OSError.

Only regular files are read or written: a FIFO planted by the sandbox must not hang the
studio, so opens are non-blocking and checked with fstat.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import posixpath
import stat

from sandboxes.backends.base import (
    WORKSPACE,
    BackendError,
    DirEntry,
    FileNotFoundInSandbox,
    PathNotUsable,
    PathOutsideWorkspace,
)
from sandboxes.paths import InvalidPath, confine

MAX_SYMLINK_HOPS = 40
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def _changing(path: str) -> PathNotUsable:
    return PathNotUsable(
        f"{path} kept changing while the studio used it (something in the sandbox is "
        "replacing it, e.g. a directory with a symlink); try again.",
        code="PathChanged",
    )


@contextlib.contextmanager
def _host_errors(path: str):
    """What the host's file calls may still raise, as the errors the API knows.

    The walk handles the races it can name; this is the boundary for the rest, so no OSError
    (a 500 with a traceback, and the host path in its message) ever leaves this module.
    Only the sandbox path and the error's short text are shown.
    """
    try:
        yield
    except PermissionError as exc:
        raise PathNotUsable(f"{path}: permission denied.", code="PermissionDenied") from exc
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EINVAL, errno.EISDIR):
            raise _changing(path) from exc
        raise BackendError(f"{path}: {exc.strerror or 'host file error'}.") from exc


def _guarded(method):
    """Run a public Workspace method (its first argument a sandbox path) in _host_errors."""

    @functools.wraps(method)
    def guarded(self, path, *args, **kwargs):
        with _host_errors(path):
            return method(self, path, *args, **kwargs)

    return guarded


class Workspace:
    """The host directory bound at /workspace in one sandbox."""

    def __init__(self, host_root: str, *, owner: tuple[int, int] | None = None):
        """`owner` (uid, gid): who the files and directories this creates belong to."""
        self.host_root = host_root
        self.owner = owner

    def _confine(self, path: str) -> str:
        try:
            return confine(path)
        except InvalidPath:
            raise PathOutsideWorkspace(path) from None

    def _walk(self, path: str, *, create_dirs: bool = False) -> tuple[list[int], str | None]:
        """Resolve `path` (a sandbox path) to (stack of dir fds from the root, final name).

        The final name is None when the path is the workspace root itself. Every symlink on
        the way, the last component included, is resolved inside the workspace. The final
        component need not exist. The caller closes the fds.
        """
        full = self._confine(path)
        pending = _parts(posixpath.relpath(full, WORKSPACE))
        stack = [os.open(self.host_root, _DIR_FLAGS)]
        hops = 0
        try:
            while pending:
                name = pending.pop(0)
                if name == "..":
                    if len(stack) == 1:
                        raise PathOutsideWorkspace(path)
                    os.close(stack.pop())
                    continue
                try:
                    st = os.lstat(name, dir_fd=stack[-1])
                except FileNotFoundError:
                    if not pending:
                        return stack, name
                    if not create_dirs:
                        raise FileNotFoundInSandbox(path) from None
                    # FileExistsError: raced with the sandbox, so look again.
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(name, 0o755, dir_fd=stack[-1])
                        if self.owner:
                            os.chown(name, *self.owner, dir_fd=stack[-1], follow_symlinks=False)
                    pending.insert(0, name)
                    continue
                if stat.S_ISLNK(st.st_mode):
                    hops += 1
                    if hops > MAX_SYMLINK_HOPS:
                        raise PathNotUsable(
                            f"Too many levels of symbolic links: {path}", code="SymlinkLoop"
                        )
                    try:
                        target = os.readlink(name, dir_fd=stack[-1])
                    except OSError as exc:
                        # Gone (ENOENT) or no longer a link (EINVAL) since the lstat: the
                        # sandbox swapped it. Look at this component again.
                        if exc.errno not in (errno.ENOENT, errno.EINVAL):
                            raise
                        pending.insert(0, name)
                        continue
                    if target.startswith("/"):
                        target = posixpath.normpath(target)
                        if target != WORKSPACE and not target.startswith(WORKSPACE + "/"):
                            raise PathOutsideWorkspace(path)
                        while len(stack) > 1:
                            os.close(stack.pop())
                        target = target[len(WORKSPACE) :]
                    pending[:0] = _parts(target)
                    continue
                if not pending:
                    return stack, name
                if not stat.S_ISDIR(st.st_mode):
                    raise FileNotFoundInSandbox(path)
                try:
                    stack.append(os.open(name, _DIR_FLAGS, dir_fd=stack[-1]))
                except OSError as exc:
                    if exc.errno not in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
                        raise
                    hops += 1  # swapped under us; resolve this component again
                    if hops > MAX_SYMLINK_HOPS:
                        raise _changing(path) from None
                    pending.insert(0, name)
            return stack, None
        except BaseException:
            for fd in stack:
                os.close(fd)
            raise

    def _open(self, path: str, flags: int, *, create_dirs: bool = False, mode: int = 0o644):
        """Open the file at `path` with O_NOFOLLOW, re-resolving if it turns into a symlink."""
        for _ in range(MAX_SYMLINK_HOPS):
            stack, name = self._walk(path, create_dirs=create_dirs)
            try:
                if name is None:
                    raise PathNotUsable(f"{path} is a directory.", code="IsADirectory")
                try:
                    fd = os.open(
                        name,
                        flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                        mode,
                        dir_fd=stack[-1],
                    )
                except FileNotFoundError:
                    raise FileNotFoundInSandbox(path) from None
                except OSError as exc:
                    if exc.errno == errno.ELOOP:
                        continue  # became a symlink after we looked: resolve again
                    if exc.errno == errno.EISDIR:
                        raise PathNotUsable(
                            f"{path} is a directory.", code="IsADirectory"
                        ) from None
                    if exc.errno == errno.ENXIO:
                        raise PathNotUsable(
                            f"{path} is not a regular file.", code="NotARegularFile"
                        ) from None
                    raise
            finally:
                for dfd in stack:
                    os.close(dfd)
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                os.close(fd)
                if stat.S_ISDIR(st.st_mode):
                    raise PathNotUsable(f"{path} is a directory.", code="IsADirectory")
                raise PathNotUsable(f"{path} is not a regular file.", code="NotARegularFile")
            return fd, st
        raise _changing(path)

    @_guarded
    def write(self, path: str, content: bytes) -> None:
        """Create or replace a regular file, making parent directories as needed.

        Files and directories it creates are given to `owner` (the sandbox's host uid, which
        is uid 1000 inside), so the sandbox user owns what the studio wrote for it.
        """
        fd, _ = self._open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, create_dirs=True)
        try:
            if self.owner:
                os.fchown(fd, *self.owner)
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)

    @_guarded
    def read(self, path: str, *, max_bytes: int) -> bytes:
        """Read a whole regular file; PathNotUsable(code="FileTooLarge") above max_bytes."""
        fd, st = self._open(path, os.O_RDONLY)
        try:
            if st.st_size > max_bytes:
                raise PathNotUsable(
                    f"{path} is {st.st_size} bytes, more than the {max_bytes} allowed.",
                    code="FileTooLarge",
                )
            chunks, total = [], 0
            while chunk := os.read(fd, 1 << 20):
                total += len(chunk)
                if total > max_bytes:  # grew while we read
                    raise PathNotUsable(
                        f"{path} is larger than {max_bytes} bytes.", code="FileTooLarge"
                    )
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def _open_dir(self, path: str) -> int | None:
        """An fd on the directory `path` resolves to, or None if it is not a directory."""
        for _ in range(MAX_SYMLINK_HOPS):
            stack, name = self._walk(path)
            try:
                if name is None:
                    return os.dup(stack[-1])
                try:
                    st = os.lstat(name, dir_fd=stack[-1])
                except FileNotFoundError:
                    raise FileNotFoundInSandbox(path) from None
                if stat.S_ISLNK(st.st_mode):
                    continue  # became a symlink after the walk resolved it: resolve again
                if not stat.S_ISDIR(st.st_mode):
                    return None
                try:
                    return os.open(name, _DIR_FLAGS, dir_fd=stack[-1])
                except OSError as exc:
                    if exc.errno not in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
                        raise
            finally:
                for dfd in stack:
                    os.close(dfd)
        raise _changing(path)

    @_guarded
    def list(self, path: str) -> list[DirEntry] | None:
        """Entries of a directory (symlinks listed, not followed), or None for a file."""
        base = self._confine(path)
        fd = self._open_dir(base)
        if fd is None:
            return None
        entries = []
        try:
            with os.scandir(fd) as it:
                for entry in it:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    entries.append(
                        DirEntry(
                            name=entry.name,
                            path=posixpath.join(base, entry.name),
                            is_dir=stat.S_ISDIR(st.st_mode),
                            size=st.st_size,
                        )
                    )
        finally:
            os.close(fd)
        return sorted(entries, key=lambda e: e.name)

    @_guarded
    def check_dir(self, path: str) -> str:
        """Confine `path` and make sure it resolves to a directory inside the workspace.

        Returns the sandbox path to chdir to. The jail resolves it again at exec time; if the
        sandbox swaps in a symlink meanwhile, that resolution happens inside the jail, where
        nothing of the host is visible.
        """
        full = self._confine(path)
        fd = self._open_dir(full)
        if fd is None:
            raise PathNotUsable(f"{path} is not a directory.", code="NotADirectory")
        os.close(fd)
        return full
