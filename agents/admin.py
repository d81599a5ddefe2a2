from __future__ import annotations

from django import forms
from django.contrib import admin

from agents.models import Agent, Secret, Session, Skill


class SecretForm(forms.ModelForm):
    """The value is write-only: the field is always rendered empty."""

    value = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave empty to keep the current value.",
    )

    class Meta:
        model = Secret
        fields = ["name"]

    def clean(self):
        cleaned = super().clean()
        if not self.instance.pk and not cleaned.get("value"):
            self.add_error("value", "A new secret needs a value.")
        return cleaned

    def save(self, commit=True):
        if self.cleaned_data.get("value"):
            self.instance.set_value(self.cleaned_data["value"])
        return super().save(commit=commit)


class SkillInline(admin.StackedInline):
    model = Skill
    extra = 0


class SecretInline(admin.TabularInline):
    model = Secret
    form = SecretForm
    extra = 0
    fields = ["name", "value", "updated_at"]
    readonly_fields = ["updated_at"]


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "owner",
        "model",
        "sandbox_backend",
        "max_turns",
        "budget_usd_per_run",
        "budget_usd_per_day",
        "budget_usd_per_month",
        "created_at",
    ]
    list_filter = ["sandbox_backend", "permission_mode", "created_at"]
    search_fields = ["name", "description", "owner__username", "id"]
    list_select_related = ["owner"]
    readonly_fields = ["id", "budget_spent", "created_at", "updated_at"]
    inlines = [SkillInline, SecretInline]
    actions = ["deploy_selected", "stop_selected"]

    @admin.display(description="Budget: spent and remaining")
    def budget_spent(self, agent: Agent) -> str:
        """Metered model cost against each budget (docs/budgets.md); the limits themselves
        are the budget fields above."""
        from gateway.admin import budget_text
        from gateway.budgets import agent_limits

        if agent.pk is None or agent._state.adding:
            return "—"
        runs = agent.sessions.order_by("-created_at")[:1]
        return budget_text(agent_limits(agent=agent, session=runs[0] if runs else None))

    @admin.action(description="Deploy selected agents")
    def deploy_selected(self, request, queryset):
        from sandboxes.services.deploy import sandbox_deploy

        for agent in queryset:
            sandbox_deploy(agent=agent)
        self.message_user(request, f"Deploy queued for {queryset.count()} agent(s).")

    @admin.action(description="Stop the sandboxes of selected agents")
    def stop_selected(self, request, queryset):
        from sandboxes.services.deploy import live_sandbox
        from sandboxes.services.lifecycle import sandbox_stop

        stopped = 0
        for agent in queryset:
            sandbox = live_sandbox(agent)
            if sandbox is not None:
                sandbox_stop(sandbox=sandbox)
                stopped += 1
        self.message_user(request, f"Stopped {stopped} sandbox(es).")


@admin.register(Secret)
class SecretAdmin(admin.ModelAdmin):
    form = SecretForm
    list_display = ["name", "agent", "updated_at"]
    search_fields = ["name", "agent__name"]
    list_select_related = ["agent"]
    fields = ["agent", "name", "value", "updated_at"]
    readonly_fields = ["updated_at"]

    def get_form(self, request, obj=None, **kwargs):
        kwargs["fields"] = ["agent", "name"]
        return super().get_form(request, obj, **kwargs)


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "agent",
        "status",
        "created_at",
        "started_at",
        "finished_at",
        "num_turns",
        "total_cost_usd",
        "last_seq",
    ]
    list_filter = ["status", "created_at"]
    search_fields = ["id", "prompt", "agent__name", "claude_session_id"]
    list_select_related = ["agent"]
    date_hierarchy = "created_at"
    exclude = ["encrypted_env"]
    readonly_fields = [
        "id",
        "agent",
        "sandbox",
        "prompt",
        "claude_session_id",
        "resumed_from",
        "created_at",
        "started_at",
        "finished_at",
        "num_turns",
        "total_cost_usd",
        "usage",
        "last_seq",
    ]
