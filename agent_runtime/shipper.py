"""Number, spool and ship log lines to the studio's ingest endpoint.

Every line is written to the session's spool (append-only JSONL) before anything is sent, so a
studio outage, or the death of this process, loses nothing: whoever opens the spool next (the
same run, or the server after a restart) resends what the studio has not acknowledged.
Lines are numbered from 1 without gaps and sent in batches: a batch leaves once its oldest
line has waited ``linger`` seconds (~50 ms) or it is full. Connection errors, 5xx, 408 and 429
are retried with exponential backoff and jitter (the spool keeps them meanwhile); any other
4xx means we sent something wrong, so it is never retried as it was. A batch refused for its
content (400, 413, 422) is resent in halves, so one bad line (JSON the studio will not take,
a report it refuses) is isolated in a few requests and the good lines around it still land;
a single refused line, or a batch refused for who sent it (401, 403, 404, 409: the token is
wrong or has ended), is set aside in ``rejected.jsonl`` and reported as an ``error`` line.
"""

from __future__ import annotations

import functools
import json
import random
import ssl
import sys
import threading
import time
from typing import Any

import httpx

from .protocol import LINE_FIELDS, MAX_BATCH_LINES, ingest_batch, ingest_line
from .render import red
from .state import SessionDir, now_iso

RETRY_STATUSES = frozenset({408, 429})
# Refusals of what a batch holds: worth resending in halves to find the line at fault.
SPLIT_STATUSES = frozenset({400, 413, 422})


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """One TLS context per process: building one loads the CA bundle (tens of ms)."""
    return httpx.create_ssl_context()


class Shipper:
    """Owns a session's spool and its delivery. Thread-safe ``emit``; one sender thread."""

    def __init__(
        self,
        session: SessionDir,
        ingest: dict[str, Any] | None,
        *,
        linger: float = 0.05,
        max_lines: int = 300,
        max_bytes: int = 1_000_000,
        backoff_base: float = 0.2,
        backoff_cap: float = 5.0,
        request_timeout: float = 15.0,
    ):
        self.session = session
        self.ingest = ingest or {}
        self.linger, self.max_bytes = linger, max_bytes
        self.max_lines = min(max_lines, MAX_BATCH_LINES)  # the studio refuses a bigger batch
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self._cond = threading.Condition()
        self._last_seq = session.repair_spool()
        self._acked = session.acked()
        self._pending: list[dict[str, Any]] = session.spool(after=self._acked)
        self._first_pending_at = time.monotonic() if self._pending else 0.0
        self._closing = False
        self._give_up_at: float | None = None
        self._cap = max_lines  # lines per batch: halved while a refused batch is narrowed down
        self._client = httpx.Client(timeout=request_timeout, verify=ssl_context())
        self._thread = threading.Thread(target=self._run, name="shipper", daemon=True)

    # producer side ------------------------------------------------------------------------

    def emit(
        self, kind: str, text: str, data: Any = None, *, status: dict[str, Any] | None = None
    ) -> int:
        """Spool one line and queue it for shipping; return its seq.

        ``status`` (optional) rides along with the batch that carries this line, as the
        ingest body's ``status`` field.
        """
        with self._cond:
            self._last_seq += 1
            record = ingest_line(seq=self._last_seq, kind=kind, text=text, data=data, ts=now_iso())
            if status:
                record["status"] = status
            with self.session.spool_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")  # one write: a kill leaves at most a torn tail
            if not self._pending:
                self._first_pending_at = time.monotonic()
            self._pending.append(record)
            self._cond.notify()
            return self._last_seq

    @property
    def last_seq(self) -> int:
        """The last seq spooled."""
        return self._last_seq

    @property
    def acked(self) -> int:
        """The last seq the studio settled."""
        return self._acked

    def start(self) -> Shipper:
        """Start the sender thread."""
        self._thread.start()
        return self

    def close(self, drain_seconds: float) -> bool:
        """Stop taking lines, ship what is left for at most ``drain_seconds``.

        Returns True when everything was settled; otherwise the spool keeps the rest for a
        later resend by the server.
        """
        with self._cond:
            self._closing = True
            self._give_up_at = time.monotonic() + drain_seconds
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(drain_seconds + 1)
        self._client.close()
        return not self._pending

    # sender side --------------------------------------------------------------------------

    def _run(self) -> None:
        attempt = 0
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            outcome, detail = self._post(batch)
            if outcome == "ok":
                attempt = 0
                self._cap = min(self.max_lines, self._cap * 2)
                self._settle(batch)
            elif outcome == "rejected":
                attempt = 0
                if detail[0] in SPLIT_STATUSES and len(batch) > 1:
                    self._cap = len(batch) // 2  # resend the first half, then the rest
                else:
                    self._reject(batch, detail)
            else:
                attempt += 1
                delay = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
                delay = detail if isinstance(detail, float) else delay * random.uniform(0.5, 1.0)
                if not self._sleep(delay):
                    return

    def _next_batch(self) -> list[dict[str, Any]] | None:
        """Wait for a batch worth sending; None when closing with nothing left (or deadline)."""
        with self._cond:
            while True:
                if self._past_deadline():
                    return None
                if not self._pending:
                    if self._closing:
                        return None
                    self._cond.wait(0.5)
                    continue
                waited = time.monotonic() - self._first_pending_at
                if self._closing or waited >= self.linger or len(self._pending) >= self._cap:
                    break
                self._cond.wait(self.linger - waited)
            batch, size = [], 0
            for record in self._pending[: self._cap]:
                size += len(record["text"]) + len(json.dumps(record["data"]))
                if batch and size > self.max_bytes:
                    break
                batch.append(record)
            return batch

    def _past_deadline(self) -> bool:
        return self._give_up_at is not None and time.monotonic() >= self._give_up_at

    def _sleep(self, seconds: float) -> bool:
        """Back off; False if the drain deadline passes meanwhile."""
        with self._cond:
            if self._give_up_at is not None:
                seconds = min(seconds, max(0.0, self._give_up_at - time.monotonic()))
            self._cond.wait(seconds)  # woken early by close(), harmless
            return not self._past_deadline()

    def _post(self, batch: list[dict[str, Any]]) -> tuple[str, Any]:
        if not self.ingest.get("url"):
            return "ok", None  # nowhere to ship: the spool is the only record (local use)
        lines = [{k: r[k] for k in LINE_FIELDS} for r in batch]
        statuses = [r["status"] for r in batch if r.get("status")]
        body = ingest_batch(
            session_id=self.session.session_id,
            lines=lines,
            status=statuses[-1] if statuses else None,
        )
        headers = {"Authorization": f"Bearer {self.ingest.get('token', '')}"}
        try:
            response = self._client.post(self.ingest["url"], json=body, headers=headers)
        except httpx.HTTPError as exc:
            return "retry", f"{type(exc).__name__}: {exc}"
        if response.status_code < 300:
            return "ok", None
        if response.status_code >= 500 or response.status_code in RETRY_STATUSES:
            retry_after = response.headers.get("Retry-After", "")
            if retry_after.isdigit():
                return "retry", min(float(retry_after), self.backoff_cap * 4)
            return "retry", f"HTTP {response.status_code}"
        return "rejected", (response.status_code, response.text[:2000])

    def _settle(self, batch: list[dict[str, Any]]) -> None:
        with self._cond:
            del self._pending[: len(batch)]
            self._acked = batch[-1]["seq"]
            self.session.set_acked(self._acked)
            if self._pending:
                self._first_pending_at = time.monotonic() - self.linger  # backlog: send now

    def _reject(self, batch: list[dict[str, Any]], detail: tuple[int, str]) -> None:
        status, body = detail
        first, last = batch[0]["seq"], batch[-1]["seq"]
        self.session.record_rejected(
            {"at": now_iso(), "http_status": status, "body": body, "lines": batch}
        )
        print(f"ingest rejected seq {first}-{last}: HTTP {status} {body[:500]}", file=sys.stderr)
        self._settle(batch)
        # Report it, unless the batch was itself such a report: a studio that refuses
        # everything (bad token) must not make us loop.
        if not all(_is_rejection_report(r) for r in batch):
            data = {"type": "ingest_rejected", "http_status": status, "body": body}
            data.update(first_seq=first, last_seq=last)
            self.emit(
                "error", red(f"✗ log ingest rejected lines {first}-{last}: HTTP {status}"), data
            )


def _is_rejection_report(record: dict[str, Any]) -> bool:
    data = record.get("data")
    return isinstance(data, dict) and data.get("type") == "ingest_rejected"
