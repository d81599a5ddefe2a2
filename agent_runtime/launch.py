"""Inside a sandbox: read the environment from a file descriptor, then become the command.

    python -m agent_runtime.launch --env-fd N -- COMMAND [ARGS...]

The local backend starts every process in a jail through this launcher so that the user's
variables (the agent's env, a request's env, the runtime token) never pass through a host
process: bubblewrap starts with a cleared environment and a few constants, and fd N (a
memfd the studio wrote, NAME=value entries separated by NUL bytes) carries the rest. The
launcher adds them to its own environment, closes the fd and execve's COMMAND, so nothing
of it stays behind. Standard library only; runs before anything the user installed.
"""

from __future__ import annotations

import os
import sys


def read_env(fd: int) -> dict[str, str]:
    """NAME=value entries separated by NULs, read to EOF from `fd` (then closed)."""
    chunks = []
    try:
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    finally:
        os.close(fd)
    env = {}
    for item in b"".join(chunks).split(b"\0"):
        name, sep, value = item.partition(b"=")
        if sep and name:
            env[name.decode()] = value.decode("utf-8", errors="surrogateescape")
    return env


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[0] != "--env-fd" or argv[2] != "--":
        print("usage: python -m agent_runtime.launch --env-fd N -- COMMAND...", file=sys.stderr)
        return 2
    env = dict(os.environ)
    env.update(read_env(int(argv[1])))
    command = argv[3:]
    try:
        os.execvpe(command[0], command, env)  # noqa: S606 - the point
    except OSError as exc:
        print(f"agent_runtime.launch: cannot run {command[0]}: {exc.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
