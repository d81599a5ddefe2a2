"""Admin: every metered model call (read-only), and users' spending limits (operators set
anyone's; `locked` keeps the user from changing them)."""

from __future__ import annotations

from django.contrib import admin

from gateway.budgets import user_limits
from gateway.models import ModelCall, UsageLimit
from gateway.selectors import budget_document


def budget_text(limits) -> str:
    """ "day: $0.1200 of $1.0000 ($0.8800 left) · month: $0.1200 (no limit)" for admin."""
    doc = budget_document(limits)
    parts = []
    for name, spent in doc["spent"].items():
        limit, left = doc["limits"][name], doc["remaining"][name]
        period = name.removeprefix("usd_per_")
        if limit is None:
            parts.append(f"{period}: ${spent} (no limit)")
        else:
            parts.append(f"{period}: ${spent} of ${limit} (${left} left)")
    return " · ".join(parts)


@admin.register(UsageLimit)
class UsageLimitAdmin(admin.ModelAdmin):
    list_display = ["user", "usd_per_day", "usd_per_month", "locked", "spent", "updated_at"]
    list_filter = ["locked"]
    search_fields = ["user__username", "user__email"]
    list_select_related = ["user"]
    autocomplete_fields = ["user"]
    readonly_fields = ["spent", "updated_at"]

    @admin.display(description="Spent and remaining")
    def spent(self, row: UsageLimit) -> str:
        if row.pk is None:
            return "—"
        return budget_text(user_limits(user_id=row.user_id, row=row))


@admin.register(ModelCall)
class ModelCallAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "session",
        "agent",
        "user",
        "model",
        "status",
        "input_tokens",
        "output_tokens",
        "cache_write_tokens",
        "cache_read_tokens",
        "cost_usd",
        "duration_ms",
    ]
    list_filter = ["status", "model", "created_at"]
    search_fields = ["session__id", "agent__name", "user__username", "model"]
    list_select_related = ["agent", "user", "session"]
    date_hierarchy = "created_at"
    # The meter's record: what the upstream said, not something to edit.
    readonly_fields = [f.name for f in ModelCall._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
