from __future__ import annotations

from django.contrib import admin

from logs.models import LogLine


@admin.register(LogLine)
class LogLineAdmin(admin.ModelAdmin):
    """Read-only: log lines are evidence, never edited."""

    list_display = ["session", "seq", "kind", "short_text", "ts"]
    list_filter = ["kind"]
    search_fields = ["session__id", "text"]
    list_select_related = ["session"]
    show_full_result_count = False  # COUNT(*) over millions of lines is slow

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="text")
    def short_text(self, obj: LogLine) -> str:
        return obj.text[:120]
