"""GET/PUT /api/usage/limits: the signed-in user's own spending limits."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from gateway.budgets import user_limit_row
from gateway.services import usage_limit_set
from studio.errors import ValidationFailed


def _usd_field() -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=12,
        decimal_places=4,
        min_value=0,
        allow_null=True,
        required=False,
        default=None,
        help_text="USD; null means no limit.",
    )


class UsageLimitsSerializer(serializers.Serializer):
    usd_per_day = _usd_field()
    usd_per_month = _usd_field()
    locked = serializers.BooleanField(
        read_only=True, help_text="Set by an operator: PUT is refused (403)."
    )


def _render(row) -> dict:
    return UsageLimitsSerializer(
        {
            "usd_per_day": row.usd_per_day if row else None,
            "usd_per_month": row.usd_per_month if row else None,
            "locked": bool(row and row.locked),
        }
    ).data


class UsageLimitsView(APIView):
    @extend_schema(responses=UsageLimitsSerializer, operation_id="usage_limits_get")
    def get(self, request):
        return Response(_render(user_limit_row(request.user.pk)))

    @extend_schema(
        request=UsageLimitsSerializer,
        responses=UsageLimitsSerializer,
        operation_id="usage_limits_set",
    )
    def put(self, request):
        """Replace both limits: a limit left out of the body is cleared (no limit)."""
        if not isinstance(request.data, dict):
            raise ValidationFailed("Send a JSON object with usd_per_day and usd_per_month.")
        unknown = set(request.data) - {"usd_per_day", "usd_per_month"}
        if unknown:
            raise ValidationFailed(f"Unknown field(s): {', '.join(sorted(unknown))}.")
        serializer = UsageLimitsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row = usage_limit_set(user=request.user, **serializer.validated_data)
        return Response(_render(row))
