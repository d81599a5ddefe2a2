from __future__ import annotations

from celery import shared_task
from django.core.cache import cache


@shared_task
def ping(key: str) -> str:
    """A no-op the health check and tests use to prove a worker consumes the queue."""
    cache.set(key, "pong", timeout=60)
    return "pong"
