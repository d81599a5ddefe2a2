"""Which backend serves a sandbox. The only module that builds one from settings."""

from __future__ import annotations

import functools
import threading

from django.conf import settings

from sandboxes.backends.base import BackendError, SandboxBackend
from studio.model_env import model_env

_overrides: dict[str, SandboxBackend] = {}
_lock = threading.Lock()


def backend_name_for(agent) -> str:
    return agent.sandbox_backend or settings.SANDBOX_BACKEND


def get_backend(name: str) -> SandboxBackend:
    """The process-wide backend instance for `name` ("local" or "e2b")."""
    if name in _overrides:
        return _overrides[name]
    with _lock:
        return _build(name)


@functools.cache
def _build(name: str) -> SandboxBackend:
    if name == "local":
        from sandboxes.backends.local import LocalBackend
        from sandboxes.backends.local_cgroups import Limits

        return LocalBackend(
            data_dir=settings.SANDBOX_DATA_DIR,
            isolation=settings.SANDBOX_LOCAL_ISOLATION,
            uid_range=_uid_range(settings.SANDBOX_UID_RANGE),
            limits=Limits(
                pids_max=settings.SANDBOX_PIDS_MAX,
                memory_bytes=settings.SANDBOX_MEMORY_MB << 20,
                cpu_weight=min(settings.SANDBOX_CPU_WEIGHT, 10000),
            ),
            disk_bytes=settings.SANDBOX_DISK_MB << 20,
            studio_urls=_studio_urls,
            net_uid=settings.SANDBOX_NET_UID,
        )
    if name == "e2b":
        if not settings.E2B_API_KEY:
            raise BackendError(
                "E2B_API_KEY is not set. Set it to your E2B API key, or choose the local "
                "backend (SANDBOX_BACKEND=local).",
                code="E2BNotConfigured",
            )
        from sandboxes.backends.e2b import E2BBackend

        return E2BBackend(
            api_key=settings.E2B_API_KEY,
            template_id=settings.E2B_TEMPLATE_ID,
            install_id=settings.STUDIO_INSTALL_ID,
            domain=settings.E2B_DOMAIN or None,
            studio_urls=_studio_urls,
        )
    raise BackendError(f"Unknown sandbox backend {name!r}.", code="UnknownBackend")


def _studio_urls() -> tuple[str, ...]:
    """What a local sandbox must reach on the studio's side under every network policy:
    BACKEND_API_URL (ingest), and the model endpoint the studio hands to runs for as long
    as runs call it directly rather than through the studio's model gateway."""
    model = model_env().get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com"
    return (settings.BACKEND_API_URL, model)


def _uid_range(text: str) -> tuple[int, int]:
    """SANDBOX_UID_RANGE "first-last" as two ints; a clear error if it is not that."""
    first, sep, last = text.partition("-")
    try:
        if sep:
            return int(first), int(last)
    except ValueError:
        pass
    raise BackendError(
        f"SANDBOX_UID_RANGE must be FIRST-LAST (e.g. 1300000-1365535), not {text!r}.",
        code="BadSetting",
    )


def override_backend(name: str, backend: SandboxBackend | None) -> None:
    """Tests: serve `name` from `backend` (None restores the configured one)."""
    if backend is None:
        _overrides.pop(name, None)
    else:
        _overrides[name] = backend
