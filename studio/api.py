"""API plumbing shared by every app: pagination and the one exception handler."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from studio.errors import ApplicationError


class Pagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


_CODES = {
    status.HTTP_400_BAD_REQUEST: "ValidationError",
    status.HTTP_401_UNAUTHORIZED: "NotAuthenticated",
    status.HTTP_403_FORBIDDEN: "PermissionDenied",
    status.HTTP_404_NOT_FOUND: "NotFound",
    status.HTTP_405_METHOD_NOT_ALLOWED: "MethodNotAllowed",
    status.HTTP_406_NOT_ACCEPTABLE: "NotAcceptable",
    status.HTTP_413_REQUEST_ENTITY_TOO_LARGE: "PayloadTooLarge",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "UnsupportedMediaType",
    status.HTTP_429_TOO_MANY_REQUESTS: "Throttled",
}


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        for field, value in detail.items():
            inner = _first_message(value)
            return inner if field in ("non_field_errors", "detail") else f"{field}: {inner}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def error_response(code: str, message: str, http_status: int, details=None, headers=None):
    body = {"error": code, "message": message}
    if details:
        body["details"] = details
    return Response(body, status=http_status, headers=headers)


def exception_handler(exc, context):
    """Render every error as {"error", "message", "details"?} with a 4xx status."""
    if isinstance(exc, ApplicationError):
        return error_response(exc.code, exc.message, exc.status, exc.details or None)
    if isinstance(exc, RequestDataTooBig):
        return error_response("PayloadTooLarge", "The request body is too large.", 413)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return error_response(
            "ValidationError", _first_message(details), response.status_code, details
        )
    detail = getattr(exc, "detail", "")
    code = _CODES.get(response.status_code, type(exc).__name__)
    if isinstance(exc, exceptions.NotFound):
        detail = "Not found."
    return error_response(
        code, _first_message(detail), response.status_code, headers=dict(response.items())
    )
