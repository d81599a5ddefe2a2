"""Which backend serves a sandbox. The only module that builds one from settings."""

from __future__ import annotations

import functools
import threading

from django.conf import settings

from sandboxes.backends.base import BackendError, SandboxBackend

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

        return LocalBackend(
            data_dir=settings.SANDBOX_DATA_DIR, isolation=settings.SANDBOX_LOCAL_ISOLATION
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
            max_timeout_seconds=settings.E2B_MAX_TIMEOUT_SECONDS,
        )
    raise BackendError(f"Unknown sandbox backend {name!r}.", code="UnknownBackend")


def override_backend(name: str, backend: SandboxBackend | None) -> None:
    """Tests: serve `name` from `backend` (None restores the configured one)."""
    if backend is None:
        _overrides.pop(name, None)
    else:
        _overrides[name] = backend
