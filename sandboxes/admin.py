from __future__ import annotations

from django.contrib import admin

from sandboxes.models import Sandbox


@admin.register(Sandbox)
class SandboxAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "agent",
        "backend",
        "status",
        "created_at",
        "ready_at",
        "expires_at",
        "stopped_at",
        "cost",
    ]
    list_filter = ["status", "backend", "created_at"]
    search_fields = ["id", "external_id", "agent__name", "agent__owner__username"]
    list_select_related = ["agent"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "id",
        "agent",
        "backend",
        "external_id",
        "template",
        "runtime_url",
        "created_at",
        "ready_at",
        "stopped_at",
        "last_activity_at",
        "cost_per_second",
        "cost",
    ]

    @admin.display(description="Cost (USD)")
    def cost(self, obj: Sandbox):
        return obj.cost_usd
