"""The Celery worker and beat of embedded mode, as threads of the studio process.

Production runs `celery -A studio worker` and `celery -A studio beat` instead. Here the
broker is kombu's in-memory transport, which only works inside one process: that is why
both live beside the ASGI server rather than in processes of their own.
"""

from __future__ import annotations

import logging
import threading

from celery import signals
from celery.beat import EmbeddedService

log = logging.getLogger(__name__)


class EmbeddedWorker:
    """A Celery worker (thread pool) and the beat scheduler running in daemon threads.

    With `ready_signal`, Celery's `worker_ready` is sent once the worker consumes, as
    `celery worker` does: the studio reconciles its sandboxes on it after a restart. A bare
    WorkController never sends it. Tests that start a worker of their own leave it off.
    """

    def __init__(self, app, *, concurrency: int = 4, beat: bool = True, ready_signal=False):
        self.app = app
        self.concurrency = concurrency
        self.with_beat = beat
        self.ready_signal = ready_signal
        self.worker = None
        self.beat = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        controller = self.app.WorkController
        if self.ready_signal:
            controller = type("ReadyWorkController", (controller,), {"on_consumer_ready": _ready})
        self.worker = controller(
            pool_cls="threads",
            concurrency=self.concurrency,
            hostname="embedded@studio",
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
            loglevel="WARNING",
        )
        self._thread = threading.Thread(target=self.worker.start, name="celery-worker", daemon=True)
        self._thread.start()
        if self.with_beat:
            self.beat = EmbeddedService(self.app, thread=True)
            self.beat.start()
        log.info("embedded worker started concurrency=%s beat=%s", self.concurrency, self.with_beat)

    def stop(self) -> None:
        if self.beat is not None:
            self.beat.stop()
        if self.worker is not None:
            self.worker.stop(in_sighandler=False)
        if self._thread is not None:
            self._thread.join(timeout=10)


def _ready(self, consumer) -> None:
    signals.worker_ready.send(sender=consumer)
