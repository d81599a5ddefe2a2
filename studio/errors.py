"""The application's error family. The API's exception handler maps each to HTTP."""

from __future__ import annotations


class ApplicationError(Exception):
    """A failure the user can act on. `message` is safe to show; it never holds a secret."""

    status = 400
    code = "ApplicationError"

    def __init__(self, message: str, *, details: dict | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if code:
            self.code = code


class ValidationFailed(ApplicationError):
    status = 400
    code = "ValidationError"


class NotAuthenticated(ApplicationError):
    status = 401
    code = "NotAuthenticated"


class Forbidden(ApplicationError):
    status = 403
    code = "PermissionDenied"


class NotFound(ApplicationError):
    status = 404
    code = "NotFound"


class Conflict(ApplicationError):
    """The server cannot serve the request because of its own state."""

    status = 409
    code = "Conflict"


class QuotaExceeded(ApplicationError):
    status = 429
    code = "QuotaExceeded"


class Unavailable(ApplicationError):
    """A dependency (sandbox provider, runtime) failed; retrying later may work."""

    status = 502
    code = "SandboxUnavailable"
