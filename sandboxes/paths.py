"""The one place that decides whether a sandbox path is inside /workspace."""

from __future__ import annotations

import posixpath

from sandboxes.backends.base import WORKSPACE

MAX_PATH_LENGTH = 1024


class InvalidPath(ValueError):
    """The path is malformed or leaves /workspace. The message names the problem."""


def confine(path: str) -> str:
    """Return the normalized absolute path of `path` inside /workspace.

    Relative paths are taken from /workspace. Anything that normalizes outside it, holds a
    NUL byte, or is unreasonably long raises InvalidPath. Symlinks are the backend's to
    check, since only the sandbox can resolve them.
    """
    if not isinstance(path, str) or not path.strip():
        raise InvalidPath("Path must be a non-empty string.")
    if "\x00" in path:
        raise InvalidPath("Path must not contain NUL bytes.")
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidPath(f"Path is longer than {MAX_PATH_LENGTH} characters.")
    full = posixpath.normpath(posixpath.join(WORKSPACE, path))
    # normpath keeps a leading "//"; fold it so "//etc" cannot pass as inside.
    full = "/" + full.lstrip("/")
    if full != WORKSPACE and not full.startswith(WORKSPACE + "/"):
        raise InvalidPath(f"Path {path!r} is outside /workspace.")
    return full


def relative(path: str) -> str:
    """The part of a confined path below /workspace ("" for /workspace itself)."""
    return posixpath.relpath(confine(path), WORKSPACE).removeprefix(".")
