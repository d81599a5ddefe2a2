"""What a sandbox costs: the one home of the price table and of the sum.

E2B bills a running sandbox per second for its size: vCPUs times a price per vCPU-second
plus memory (GiB) times a price per GiB-second (published: $0.000014 and $0.0000045, so
2 vCPU + 2 GiB is about $0.000037/s). It bills from creation until the sandbox is killed,
and a paused sandbox costs no compute. The studio counts the same way: from `created_at` to
`stopped_at` (or now), minus the seconds spent paused, times the rate fixed when the sandbox
got its size. Prices come from settings (`SANDBOX_PRICES`: per vCPU-second, per GiB-second and
flat per second; E2B's published prices by default, local sandboxes free unless
LOCAL_COST_PER_SECOND is set), or one flat `SANDBOX_COST_PER_SECOND` for every sandbox.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.utils import timezone

MICRO = Decimal("0.000001")
RATE = Decimal("0.00000001")  # Sandbox.cost_per_second keeps 8 decimal places


def default_size(backend: str) -> tuple[int | None, int | None]:
    """(vCPUs, MiB) a sandbox is billed at until its provider reports its size: the E2B
    template's build size (E2B_SANDBOX_VCPUS / E2B_SANDBOX_MEMORY_MB); unknown locally."""
    if backend == "e2b":
        return settings.E2B_SANDBOX_VCPUS, settings.E2B_SANDBOX_MEMORY_MB
    return None, None


def rate_per_second(*, backend: str, vcpus: int | None, memory_mb: int | None) -> Decimal:
    """USD per second for a sandbox of this size on this backend."""
    if settings.SANDBOX_COST_PER_SECOND is not None:
        return Decimal(str(settings.SANDBOX_COST_PER_SECOND)).quantize(RATE)
    prices = settings.SANDBOX_PRICES.get(backend, {})
    flat = Decimal(str(prices.get("second", 0)))
    vcpu = Decimal(str(prices.get("vcpu_second", 0)))
    gib = Decimal(str(prices.get("gib_second", 0)))
    rate = flat + Decimal(vcpus or 0) * vcpu + Decimal(memory_mb or 0) / Decimal(1024) * gib
    return rate.quantize(RATE)


def billed_seconds(sandbox, *, now=None) -> float:
    """Seconds from creation to stop (or now) that were not spent paused."""
    if sandbox.created_at is None:
        return 0.0
    now = now or timezone.now()
    end = sandbox.stopped_at or now
    paused = sandbox.paused_seconds or 0.0
    if sandbox.paused_at is not None:  # paused now, or stopped while paused
        paused += max(0.0, (end - sandbox.paused_at).total_seconds())
    return max(0.0, (end - sandbox.created_at).total_seconds() - paused)


def sandbox_cost(sandbox, *, now=None) -> Decimal:
    """Billed seconds times the sandbox's rate, in USD to the micro-dollar."""
    seconds = Decimal(str(round(billed_seconds(sandbox, now=now), 3)))
    return (seconds * Decimal(str(sandbox.cost_per_second))).quantize(MICRO)
