"""A minimal agent_runtime for double sandboxes: `/health` behind the runtime token.

It keeps the contract the E2B template relies on: the token is read from
`RUNTIME_TOKEN_FILE`, and until that file exists every request gets 503.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        token_file = Path(os.environ.get("RUNTIME_TOKEN_FILE", ""))
        token = token_file.read_text().strip() if token_file.is_file() else ""
        if not token:
            return self._json(503, {"error": "NotReady", "message": "No runtime token yet."})
        sent = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(sent.encode(), token.encode()):
            return self._json(401, {"error": "Unauthorized", "message": "Bad runtime token."})
        if self.path != "/health":
            return self._json(404, {"error": "NotFound", "message": self.path})
        self._json(200, {"status": "healthy", "version": "standin", "busy": False, "sessions": 0})

    def _json(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
