"""The OpenAPI schema's view of errors: every operation documents the error answers the
API's one exception handler (studio/api.py) can give, in its one shape."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as BaseAutoSchema
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="A stable code, e.g. ValidationError, NotFound.")
    message = serializers.CharField(help_text="A sentence for a human.")
    details = serializers.DictField(required=False, help_text="Per-field problems, if any.")


# What any authenticated API call may answer besides success: bad input, no or bad
# credentials (or CSRF), not yours / not found, the server's state, body too large, wrong
# media type, throttled. Routes acting on a sandbox may also meet an unavailable provider.
ERROR_STATUSES = ("400", "401", "403", "404", "409", "413", "415", "429")
SANDBOX_ERROR_STATUSES = ("502",)


class AutoSchema(BaseAutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        statuses = ERROR_STATUSES
        if type(self.view).__module__ == "sandboxes.api":
            statuses += SANDBOX_ERROR_STATUSES
        for status in statuses:
            if status not in responses:  # a view's own description of a status wins
                responses[status] = self._get_response_for_code(ErrorSerializer, status)
        return responses
