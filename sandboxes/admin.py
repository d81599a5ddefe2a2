from __future__ import annotations

from django.contrib import admin, messages

from sandboxes.models import Sandbox
from sandboxes.services.deploy import sandbox_deploy
from sandboxes.services.lifecycle import sandbox_stop, sandboxes_reap


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
        "status",
        "error",
        "created_at",
        "ready_at",
        "stopped_at",
        "last_activity_at",
        "expires_at",
        "provider_timeout_at",
        "vcpus",
        "memory_mb",
        "paused_at",
        "paused_seconds",
        "cost_per_second",
        "cost",
    ]
    actions = ["stop_selected", "redeploy_selected", "reap_now"]

    def has_add_permission(self, request):
        return False  # deploy an agent instead (Agent admin action or API)

    @admin.display(description="Cost (USD)")
    def cost(self, obj: Sandbox):
        return obj.cost_usd

    @admin.action(description="Stop selected sandboxes")
    def stop_selected(self, request, queryset):
        stopped = [sandbox_stop(sandbox=s) for s in queryset if s.is_live]
        self.message_user(request, f"Stopped {len(stopped)} sandbox(es).")

    @admin.action(description="Deploy the agents of selected sandboxes")
    def redeploy_selected(self, request, queryset):
        for sandbox in queryset.select_related("agent"):
            sandbox_deploy(agent=sandbox.agent)
        self.message_user(request, "Deploy queued.")

    @admin.action(description="Reap expired sandboxes now")
    def reap_now(self, request, queryset):
        reaped = sandboxes_reap()
        self.message_user(request, f"Reaped {len(reaped)} expired sandbox(es).", messages.INFO)
