"""GET /healthz: liveness, and readiness of the database, channel layer and broker."""

from __future__ import annotations

import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_channel_layer() -> None:
    layer = get_channel_layer()
    async_to_sync(layer.group_send)("healthz", {"type": "healthz.ping"})


def _check_broker() -> None:
    from studio.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


CHECKS = {
    "database": _check_database,
    "channel_layer": _check_channel_layer,
    "broker": _check_broker,
}


@require_GET
def healthz(request):
    results, ok = {}, True
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            check()
            results[name] = {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}
        except Exception as exc:  # a probe reports every failure instead of raising
            ok = False
            results[name] = {"ok": False, "error": type(exc).__name__}
    return JsonResponse(
        {"status": "ok" if ok else "degraded", "checks": results}, status=200 if ok else 503
    )
