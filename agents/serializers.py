"""Input and output shapes of the agents API. Validation only; no business logic."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agents.models import (
    AGENT_FIELDS,
    KNOWN_TOOLS,
    MAX_ALLOWLIST,
    NETWORK_POLICIES,
    PERMISSION_MODES,
    SANDBOX_BACKENDS,
    Agent,
    Skill,
    domain_pattern_validator,
    env_name_validator,
)

RESERVED_ENV_PREFIXES = ("ANTHROPIC_", "CLAUDE_CODE_", "RUNTIME_", "AGENT_STUDIO_")
MAX_ENV_VALUE = 32 * 1024
MAX_SKILLS = 50
MAX_SECRETS = 100


def validate_env_names(value: dict, *, allow_reserved: bool = False) -> dict:
    if not isinstance(value, dict):
        raise serializers.ValidationError("Must be an object of NAME: value.")
    if len(value) > 200:
        raise serializers.ValidationError("At most 200 variables.")
    for name, item in value.items():
        env_name_validator(name)
        if not allow_reserved and name.upper().startswith(RESERVED_ENV_PREFIXES):
            raise serializers.ValidationError(f"{name} is reserved for the studio.")
        if not isinstance(item, str):
            raise serializers.ValidationError(f"{name} must be a string.")
        if len(item) > MAX_ENV_VALUE:
            raise serializers.ValidationError(f"{name} is longer than {MAX_ENV_VALUE} characters.")
        if "\x00" in item:
            raise serializers.ValidationError(f"{name} must not contain NUL bytes.")
    return value


class CostSerializer(serializers.Serializer):
    model_usd = serializers.DecimalField(max_digits=14, decimal_places=6)
    sandbox_usd = serializers.DecimalField(max_digits=14, decimal_places=6)
    total_usd = serializers.DecimalField(max_digits=14, decimal_places=6)
    sessions = serializers.IntegerField()


class SkillSerializer(serializers.ModelSerializer):
    class Meta:
        model = Skill
        fields = ["name", "description", "body"]
        # Uniqueness per agent is checked across the submitted list below.
        validators = []


class SecretNameSerializer(serializers.Serializer):
    name = serializers.CharField()
    updated_at = serializers.DateTimeField()


def _budget_field() -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=12,
        decimal_places=4,
        min_value=0,
        allow_null=True,
        required=False,
        help_text="USD; null means no limit.",
    )


class AgentInputSerializer(serializers.ModelSerializer):
    skills = SkillSerializer(many=True, required=False)
    secrets = serializers.DictField(
        child=serializers.CharField(allow_null=True, allow_blank=False, max_length=MAX_ENV_VALUE),
        required=False,
        write_only=True,
        help_text="NAME: value sets or replaces a secret; NAME: null removes it. "
        "Secrets not named are kept. Values are never returned.",
    )
    allowed_tools = serializers.ListField(
        child=serializers.ChoiceField(choices=KNOWN_TOOLS), required=False, max_length=50
    )
    permission_mode = serializers.ChoiceField(choices=PERMISSION_MODES, required=False)
    network_policy = serializers.ChoiceField(choices=NETWORK_POLICIES, required=False)
    network_allowlist = serializers.ListField(
        child=serializers.CharField(max_length=253, validators=[domain_pattern_validator]),
        required=False,
        max_length=MAX_ALLOWLIST,
        help_text="Domains reachable under network_policy=allowlist; *.example.com "
        "matches its subdomains.",
    )
    budget_usd_per_run = _budget_field()
    budget_usd_per_day = _budget_field()
    budget_usd_per_month = _budget_field()

    class Meta:
        model = Agent
        fields = [*AGENT_FIELDS, "skills", "secrets"]

    def validate_network_allowlist(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(d.lower() for d in value))

    def validate_name(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("Name must not be blank.")
        return value.strip()

    def validate_allowed_tools(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    def validate_env(self, value):
        return validate_env_names(value)

    def validate_skills(self, value: list[dict]) -> list[dict]:
        if len(value) > MAX_SKILLS:
            raise serializers.ValidationError(f"At most {MAX_SKILLS} skills.")
        # A PATCH is partial down to the nested skills, but a list replaces them all, so
        # each one must still be whole.
        for item in value:
            missing = [f for f in SkillSerializer.Meta.fields if f not in item]
            if missing:
                raise serializers.ValidationError(f"Each skill needs {', '.join(missing)}.")
        names = [s["name"] for s in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise serializers.ValidationError(f"Duplicate skill name: {', '.join(duplicates)}.")
        return value

    def validate_secrets(self, value: dict) -> dict:
        if len(value) > MAX_SECRETS:
            raise serializers.ValidationError(f"At most {MAX_SECRETS} secrets.")
        for name in value:
            env_name_validator(name)
            if name.upper().startswith(RESERVED_ENV_PREFIXES):
                raise serializers.ValidationError(f"{name} is reserved for the studio.")
        return value


class AgentOutputSerializer(serializers.ModelSerializer):
    skills = SkillSerializer(many=True, read_only=True)
    secrets = serializers.SerializerMethodField(
        help_text="Names of the secrets set on this agent; values are never returned."
    )
    cost = serializers.SerializerMethodField()
    budget = serializers.SerializerMethodField(
        help_text="Limits, spent and remaining: usd_per_run (its latest run), usd_per_day, "
        "usd_per_month (calendar periods in the studio's TIME_ZONE)."
    )
    # Blank means the site default; declared so the schema's enum admits it.
    sandbox_backend = serializers.ChoiceField(
        choices=SANDBOX_BACKENDS, allow_blank=True, read_only=True
    )

    class Meta:
        model = Agent
        fields = [
            "id",
            *AGENT_FIELDS,
            "skills",
            "secrets",
            "cost",
            "budget",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(CostSerializer)
    def get_cost(self, agent: Agent) -> dict:
        """Model and sandbox cost so far. A list passes `costs` in the context (one query
        for all agents)."""
        from sandboxes.selectors import costs_by_agent

        costs = self.context.get("costs") or costs_by_agent([agent.pk])
        return costs[agent.pk].as_dict()

    def get_budget(self, agent: Agent) -> dict:
        """A list passes `budgets` in the context (three queries for all agents)."""
        from gateway.selectors import agent_budgets

        budgets = self.context.get("budgets") or agent_budgets([agent.pk])
        return budgets[agent.pk]

    def get_secrets(self, agent: Agent) -> list[str]:
        return [s.name for s in agent.secrets.all()]
