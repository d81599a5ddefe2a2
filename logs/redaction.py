"""Secret redaction: the one place that decides what a stored log line may not contain.

Every line is redacted before it is stored (and therefore before anyone can read it through
the API or a WebSocket). Three sources are masked with ``***``:

- known values: the agent's secrets, the session's request env values, and the model
  credentials the studio hands to sandboxes (``settings.MODEL_ENV_NAMES`` plus secret-looking
  ``CLAUDE_CODE_*`` variables, read from the studio's environment);
- well-known token shapes (Anthropic, GitHub, AWS, Slack, private keys), whoever leaked them;
- in ``text`` and recursively in ``data`` (dict keys and values, lists).

Values shorter than ``MIN_SECRET_LENGTH`` are not masked: a two-letter secret would turn
every log into asterisks. Known limitation: encoded forms of a secret (base64, URL-escaped)
are not recognised unless they match a token shape.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings

from logs import jsonio
from studio.model_env import model_env

MASK = "***"
MIN_SECRET_LENGTH = 4
# How long the ingest reuses a session's redactor: a secret added to the agent mid-run is
# masked in that session's lines from at most this long after (the sandbox received its
# values when the run started, so this is about values it could learn some other way).
SESSION_REDACTOR_TTL = 5.0
_SESSION_REDACTORS_MAX = 1024

TOKEN_SHAPES = (
    r"sk-ant-[A-Za-z0-9_\-]{8,}",  # Anthropic API keys and OAuth tokens
    r"gh[pousr]_[A-Za-z0-9]{20,}",  # GitHub classic tokens
    r"github_pat_[A-Za-z0-9_]{20,}",  # GitHub fine-grained tokens
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key ids
    r"(?i:aws_secret_access_key)[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+=]{40}",  # AWS secret keys
    r"xox[abprs]-[A-Za-z0-9-]{10,}",  # Slack tokens
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
)
_SHAPES = re.compile("|".join(f"(?:{p})" for p in TOKEN_SHAPES))
# A literal that every match of a token shape contains (the AWS secret key's name in any
# case): a string without any of them, or a secret value, needs no regular expression.
SHAPE_LITERALS = (
    "sk-ant-",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "AKIA",
    "ASIA",
    "xox",
    "-----BEGIN ",
)
SHAPE_LITERALS_ANY_CASE = ("aws_secret_access_key",)
_SECRETISH_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)


class Redactor:
    """Masks a fixed set of values and the token shapes in strings and JSON-like data."""

    def __init__(self, values: Iterable[str] = ()):
        unique = {v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH}
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted(unique, key=len, reverse=True)
        self._values = tuple(ordered)
        self._escaped = tuple(jsonio.dumps(v)[1:-1] for v in ordered)
        parts = [re.escape(v) for v in ordered] + [f"(?:{p})" for p in TOKEN_SHAPES]
        self._pattern = re.compile("|".join(parts)) if ordered else _SHAPES

    def text(self, value: str) -> str:
        """The string with every known value and token shape replaced by ``***``.

        NUL characters become U+FFFD too: PostgreSQL can store them neither in text nor jsonb.
        """
        if not value:
            return value
        if "\x00" in value:
            value = value.replace("\x00", "\ufffd")
        if self._pattern.search(value) is None:  # the common case, and much cheaper than sub
            return value
        return self._pattern.sub(MASK, value)

    def could_change(self, texts: list[str], documents: list[str]) -> bool:
        """Whether redacting could change any of ``texts`` or of the data that ``documents``
        hold (``jsonio.dumps`` output). False only when it cannot: no NUL, and none of the
        secret values nor the literal part of every token shape occurs in any of them (in
        the documents, a value in its JSON escaping: JSON escapes each character on its own).
        Substring searches over a whole batch cost a fraction of the regular expression's.
        """
        text, docs = "\n".join(texts), "\n".join(documents)
        if "\x00" in text or "\\u0000" in docs:
            return True
        if any(value in text for value in self._values) or any(
            value in docs for value in self._escaped
        ):
            return True
        both = text + "\n" + docs
        if any(literal in both for literal in SHAPE_LITERALS):
            return True
        folded = [_fold(text), _fold(docs)]
        return any(literal in f for literal in SHAPE_LITERALS_ANY_CASE for f in folded)

    def data(self, value: Any) -> Any:
        """A copy of JSON-like data with every string (keys included) redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value


def _fold(value: str) -> str:
    # casefold() is what matching in any case needs (ſ is s); on ASCII, lower() is the same
    # and several times faster (the JSON documents are ASCII).
    return value.lower() if value.isascii() else value.casefold()


def model_credentials() -> list[str]:
    """The model credential values this studio hands to sandboxes (from its environment)."""
    return [
        value
        for name, value in model_env().items()
        if name in settings.MODEL_ENV_NAMES or _SECRETISH_NAME.search(name)
    ]


def redactor_for_session(session) -> Redactor:
    """The redactor for one session's lines: its agent's secrets, its request env, the model
    credentials. Decrypts secrets, so build one per batch, not per line."""
    from agents.models import Secret

    values = [secret.reveal() for secret in Secret.objects.filter(agent_id=session.agent_id)]
    values += list(session.reveal_env().values())
    values += model_credentials()
    return Redactor(values)


_session_redactors: dict = {}
_session_redactors_lock = threading.Lock()


def session_redactor(session) -> Redactor:
    """``redactor_for_session``, reused for ``SESSION_REDACTOR_TTL`` seconds: a running
    session sends a batch every few tens of milliseconds, and building a redactor costs a
    query and a decryption per secret."""
    now = time.monotonic()
    hit = _session_redactors.get(session.pk)
    if hit is not None and now - hit[0] < SESSION_REDACTOR_TTL:
        return hit[1]
    redactor = redactor_for_session(session)
    with _session_redactors_lock:
        if len(_session_redactors) >= _SESSION_REDACTORS_MAX:
            _session_redactors.clear()  # a crude bound; entries are cheap to rebuild
        _session_redactors[session.pk] = (now, redactor)
    return redactor
