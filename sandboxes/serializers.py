from __future__ import annotations

from rest_framework import serializers

from sandboxes.models import Sandbox


class SandboxOutputSerializer(serializers.ModelSerializer):
    agent = serializers.UUIDField(source="agent_id", read_only=True)
    cost_usd = serializers.DecimalField(max_digits=14, decimal_places=6, read_only=True)
    # Billed seconds: creation to stop (or now), minus paused time (sandboxes.pricing).
    uptime_seconds = serializers.FloatField(read_only=True)
    cost_per_second = serializers.DecimalField(max_digits=12, decimal_places=8, read_only=True)

    class Meta:
        model = Sandbox
        fields = [
            "id",
            "agent",
            "backend",
            "external_id",
            "template",
            "status",
            "error",
            "created_at",
            "ready_at",
            "stopped_at",
            "last_activity_at",
            "expires_at",
            "vcpus",
            "memory_mb",
            "paused_seconds",
            "paused_at",
            "uptime_seconds",
            "cost_per_second",
            "cost_usd",
        ]
        read_only_fields = fields


class DeploymentSerializer(serializers.Serializer):
    deployment = SandboxOutputSerializer()
