"""API plumbing shared by every app: pagination and the one exception handler."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as ModelValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from studio.errors import ApplicationError, ValidationFailed

# The largest integer the database takes (bigint): a larger query number is a 400, not an
# overflow in the database driver (a 500).
MAX_QUERY_INT = 2**63 - 1


class Pagination(LimitOffsetPagination):
    """limit/offset pages. A limit or offset that is not a number in range is a 400, like
    every other bad query parameter (DRF's default silently ignores it)."""

    default_limit = 50
    max_limit = 500

    def get_limit(self, request):
        limit = self._int(request, self.limit_query_param, 1, self.default_limit)
        return min(limit, self.max_limit)

    def get_offset(self, request):
        return self._int(request, self.offset_query_param, 0, 0)

    @staticmethod
    def _int(request, name: str, minimum: int, default: int) -> int:
        raw = request.query_params.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or not minimum <= value <= MAX_QUERY_INT:
            message = f"Must be an integer from {minimum} to {MAX_QUERY_INT}."
            raise ValidationFailed(f"{name}: {message}", details={name: [message]})
        return value

    def get_schema_operation_parameters(self, view):
        params = super().get_schema_operation_parameters(view)
        for param in params:
            param["schema"]["minimum"] = 1 if param["name"] == self.limit_query_param else 0
            param["schema"]["maximum"] = MAX_QUERY_INT
        return params


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
    if isinstance(exc, ModelValidationError):  # a model's full_clean() in a service
        details = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        return error_response("ValidationError", _first_message(details), 400, details)
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
