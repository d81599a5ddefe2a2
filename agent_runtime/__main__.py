"""Command line: ``python -m agent_runtime serve|run``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .state import state_root


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run ``serve`` (the HTTP server) or ``run`` (one session)."""
    parser = argparse.ArgumentParser(prog="python -m agent_runtime")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the runtime HTTP API")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workspace", default="/workspace")
    serve.add_argument("--state-dir", default=None, help="default: $HOME/.agent_runtime")
    run = commands.add_parser("run", help="(internal) run one session; body on stdin")
    run.add_argument("--workspace", required=True)
    args = parser.parse_args(argv)

    if args.command == "serve":
        from .server import serve as serve_forever

        serve_forever(
            host=args.host,
            port=args.port,
            workspace=Path(args.workspace).resolve(),
            state_dir=state_root(args.state_dir),
        )
        return 0
    from .runner import main as run_main

    return run_main(args.workspace)


if __name__ == "__main__":
    sys.exit(main())
