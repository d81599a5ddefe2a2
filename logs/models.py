from __future__ import annotations

from django.db import models

from agent_runtime import protocol

# LogKind.STATUS ... ERROR: the protocol's line kinds, as model choices.
LogKind = models.TextChoices("LogKind", [(kind.upper(), kind) for kind in protocol.LINE_KINDS])


class LogLine(models.Model):
    """One line a session emitted. (session, seq) is unique and seq runs from 1 without gaps."""

    id = models.BigAutoField(primary_key=True)
    session = models.ForeignKey("agents.Session", on_delete=models.CASCADE, related_name="lines")
    seq = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=16, choices=LogKind.choices)
    text = models.TextField(blank=True)
    data = models.JSONField(null=True, blank=True)
    ts = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["session", "seq"], name="logline_unique_session_seq")
        ]

    def __str__(self) -> str:
        return f"{self.session_id}#{self.seq}"
