"""The agent form of the pages. It only reshapes a POST into the API's input and back:
every rule lives in AgentInputSerializer (and the model), so the page and the API agree."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError

from agent_runtime import protocol
from agents.models import DEFAULT_TOOLS, KNOWN_TOOLS, PERMISSION_MODES, Agent
from agents.serializers import AgentInputSerializer

COMMON_MODELS = [
    "claude-sonnet-4-5",
    "claude-opus-4-5",
    "claude-haiku-4-5",
    "claude-opus-4-1",
    "claude-sonnet-4-0",
]
SCALARS = ("name", "description", "system_prompt", "model", "permission_mode", "sandbox_backend")
NUMBERS = ("max_turns", "timeout_seconds")
SECRET_ACTIONS = ("keep", "replace", "remove")


class AgentForm:
    """`AgentForm(request.POST, agent=...)`, `.is_valid()`, then `.data` for the services.

    `.values` is what the template shows: the submitted values after an error (secret
    values excepted: they are never rendered back), else the agent's own."""

    def __init__(self, post=None, *, agent: Agent | None = None):
        self.agent = agent
        self.post = post
        self.errors: dict[str, list[str]] = {}
        self.data: dict = {}
        self.existing_secrets = [s.name for s in agent.secrets.all()] if agent else []
        self.values = self._from_post(post) if post is not None else self._from_agent(agent)

    # ---- reading --------------------------------------------------------------------

    def _from_agent(self, agent: Agent | None) -> dict:
        if agent is None:
            return {
                **dict.fromkeys(SCALARS, ""),
                "permission_mode": protocol.DEFAULT_PERMISSION_MODE,
                "max_turns": protocol.DEFAULT_MAX_TURNS,
                "timeout_seconds": 1800,
                "allowed_tools": list(DEFAULT_TOOLS),
                "env_text": "",
                "skills": [],
                "secret_actions": {},
                "new_secrets": [],
            }
        return {
            **{f: getattr(agent, f) for f in (*SCALARS, *NUMBERS, "allowed_tools")},
            "env_text": "\n".join(f"{k}={v}" for k, v in (agent.env or {}).items()),
            "skills": [
                {"name": s.name, "description": s.description, "body": s.body}
                for s in agent.skills.all()
            ],
            "secret_actions": {},
            "new_secrets": [],
        }

    def _from_post(self, post) -> dict:
        skills = [
            {"name": n.strip(), "description": d.strip(), "body": b}
            for n, d, b in zip(
                post.getlist("skill_name"),
                post.getlist("skill_description"),
                post.getlist("skill_body"),
                strict=False,
            )
            if n.strip() or d.strip() or b.strip()  # an untouched new row is no skill
        ]
        return {
            **{f: post.get(f, "") for f in (*SCALARS, *NUMBERS)},
            "allowed_tools": [t for t in post.getlist("allowed_tools") if t],
            "env_text": post.get("env_text", ""),
            "skills": skills,
            "secret_actions": {
                name: post.get(f"secret_action:{name}", "keep") for name in self.existing_secrets
            },
            # Names only: a value typed into a form that failed is not sent back to the page.
            "new_secrets": [n.strip() for n in post.getlist("new_secret_name") if n.strip()],
        }

    # ---- validating -----------------------------------------------------------------

    def is_valid(self) -> bool:
        if self.post is None:
            return False
        payload = self._payload()
        serializer = AgentInputSerializer(data=payload)
        if not serializer.is_valid():
            for field, detail in serializer.errors.items():
                self.errors.setdefault(field, []).extend(_messages(detail))
        if self.errors:
            return False
        self.data = dict(serializer.validated_data)
        return True

    def add_model_errors(self, exc: DjangoValidationError) -> None:
        """Errors from the model's full_clean() inside the service."""
        for field, messages in getattr(exc, "message_dict", {"__all__": exc.messages}).items():
            key = "non_field_errors" if field == "__all__" else field
            self.errors.setdefault(key, []).extend(messages)

    def _payload(self) -> dict:
        post, values = self.post, self.values
        payload = {f: values[f] for f in SCALARS}
        for field in NUMBERS:
            payload[field] = values[field]  # the serializer says if it is not a number
        payload["allowed_tools"] = values["allowed_tools"]
        payload["env"] = self._env(values["env_text"])
        payload["skills"] = values["skills"]
        payload["secrets"] = self._secrets(post)
        return payload

    def _env(self, text: str) -> dict:
        env = {}
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            name, sep, value = line.partition("=")
            if not sep:
                self.errors.setdefault("env", []).append(f"Line {number}: write NAME=value.")
                continue
            env[name.strip()] = value
        return env

    def _secrets(self, post) -> dict:
        secrets: dict[str, str | None] = {}
        for name, action in self.values["secret_actions"].items():
            if action == "replace":
                secrets[name] = post.get(f"secret_value:{name}", "")
            elif action == "remove":
                secrets[name] = None
        names, values = post.getlist("new_secret_name"), post.getlist("new_secret_value")
        for name, value in zip(names, values, strict=False):
            if name.strip() or value:
                secrets[name.strip()] = value
        return secrets

    # ---- for the template -----------------------------------------------------------

    @property
    def secret_rows(self) -> list[dict]:
        actions = self.values["secret_actions"]
        return [{"name": n, "action": actions.get(n, "keep")} for n in self.existing_secrets]

    @property
    def choices(self) -> dict:
        return {
            "tools": KNOWN_TOOLS,
            "models": COMMON_MODELS,
            "permission_modes": PERMISSION_MODES,
            "secret_actions": SECRET_ACTIONS,
        }


def _messages(detail, prefix: str = "") -> list[str]:
    """Flatten DRF's nested error detail into readable sentences."""
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            label = "" if key == "non_field_errors" else f"{key}: "
            out += _messages(value, prefix + label)
        return out
    if isinstance(detail, list):
        out = []
        for i, value in enumerate(detail):
            if isinstance(value, dict) and value:
                out += _messages(value, f"{prefix}#{i + 1} ")
            elif not isinstance(value, dict):
                out += _messages(value, prefix)
        return out
    return [f"{prefix}{detail}"]
