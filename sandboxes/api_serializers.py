"""Request and response shapes of the sandbox routes."""

from __future__ import annotations

from rest_framework import serializers

from agents.serializers import validate_env_names
from sandboxes.paths import MAX_PATH_LENGTH
from sandboxes.services.actions import MAX_EXEC_TIMEOUT_MS, MAX_FILES_PER_REQUEST
from sandboxes.services.sessions import MAX_PROMPT_CHARS


class ExecuteInputSerializer(serializers.Serializer):
    prompt = serializers.CharField(max_length=MAX_PROMPT_CHARS, trim_whitespace=False)
    env = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
    resume = serializers.UUIDField(
        required=False, allow_null=True, help_text="A session id whose conversation to continue."
    )

    def validate_prompt(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("The prompt must not be blank.")
        return value

    def validate_env(self, value):
        return validate_env_names(value)


class ExecuteOutputSerializer(serializers.Serializer):
    session_id = serializers.UUIDField()
    status = serializers.CharField()


class FileInputSerializer(serializers.Serializer):
    path = serializers.CharField(max_length=MAX_PATH_LENGTH, trim_whitespace=False)
    content = serializers.CharField(allow_blank=True, trim_whitespace=False)
    encoding = serializers.ChoiceField(choices=["utf-8", "base64"], required=False, default="utf-8")


class FilesInputSerializer(serializers.Serializer):
    files = FileInputSerializer(many=True, allow_empty=False, max_length=MAX_FILES_PER_REQUEST)


class FilesWrittenSerializer(serializers.Serializer):
    written = serializers.ListField(child=serializers.CharField())


class DirEntrySerializer(serializers.Serializer):
    name = serializers.CharField()
    path = serializers.CharField()
    is_dir = serializers.BooleanField()
    size = serializers.IntegerField()


class FileReadSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["file", "directory"])
    path = serializers.CharField()
    entries = DirEntrySerializer(many=True, required=False)
    content = serializers.CharField(required=False)
    encoding = serializers.ChoiceField(choices=["utf-8", "base64"], required=False)
    size = serializers.IntegerField(required=False)


class PackagesInputSerializer(serializers.Serializer):
    packages = serializers.ListField(
        child=serializers.CharField(max_length=214),
        min_length=1,
        max_length=50,
        help_text="Package names, optionally with a version (`axios@1.7`, `requests==2.32`).",
    )
    manager = serializers.ChoiceField(
        choices=["npm", "pip"],
        required=False,
        default="npm",
        help_text=(
            "npm (the default, as in the seed guide: `npm install` into /workspace, so "
            "`require()` from the workspace finds them) or pip (the sandbox's Python)."
        ),
    )


class ExecInputSerializer(serializers.Serializer):
    command = serializers.CharField(max_length=100_000, trim_whitespace=False)
    timeout = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_EXEC_TIMEOUT_MS, help_text="Milliseconds."
    )
    cwd = serializers.CharField(required=False, max_length=MAX_PATH_LENGTH)


class ExecOutputSerializer(serializers.Serializer):
    stdout = serializers.CharField()
    stderr = serializers.CharField()
    exit_code = serializers.IntegerField()
    timed_out = serializers.BooleanField()
