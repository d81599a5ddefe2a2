"""Secret redaction: the one place that decides what the studio may not show of a sandbox's output.

Whatever the studio answers with that a sandbox produced passes through here: log lines
(before they are stored, so the API and the WebSockets only ever see redacted lines), the
stored prompt, exec and packages output, files read back (text and binary), and error
messages that carry sandbox output. Three sources are masked with ``***``:

- known values: the agent's secrets, the request env values, the credentials the studio
  hands the sandbox (``sandbox_credentials``: the ingest token, the runtime token) and the
  model credentials it hands every run (``settings.MODEL_ENV_NAMES`` plus secret-looking
  ``CLAUDE_CODE_*`` variables, read from the studio's environment);
- each known value of at least ``ENCODED_MIN_LENGTH`` characters also in its encoded forms
  (``encoded_forms``): base64 (with and without padding, and the part of a longer base64
  stream it fills at each of the three byte alignments), base64url the same way, hex in
  either case, URL-encoded, reversed; and any of these line-folded: split by spaces, tabs
  or line breaks (``base64`` wraps at 76 columns, ``fold`` anywhere);
- well-known token shapes (Anthropic, GitHub, AWS, Slack, private keys), whoever leaked them;
- in ``text`` and in ``data`` (dict keys and values, lists; depth-bounded).

Values shorter than ``MIN_SECRET_LENGTH`` are not masked: a two-letter secret would turn
every log into asterisks. What this cannot catch (the README says it too): a secret
transformed some other way (compressed, encrypted, hashed, nested encodings, another
alphabet, every character on its own log line, a few characters at a time), and a secret
the studio does not know (anything the agent can read that is not listed above).

Speed: the ingest asks ``could_change`` first, a handful of C-speed substring searches over
the whole batch, and runs the regular expressions only when it says yes (bench/ingest.py).
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

import ahocorasick
from django.conf import settings

from agents.models import Secret, Session
from logs import jsonio
from studio import tokens
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
_SHAPE_LITERAL_BYTES = tuple(literal.encode() for literal in SHAPE_LITERALS)
_SHAPE_LITERALS_ANY_CASE_BYTES = tuple(literal.encode() for literal in SHAPE_LITERALS_ANY_CASE)
# The only characters outside ASCII that casefold into one of those literals' letters.
_CASEFOLDS_TO_ASCII = ("\u017f".encode(), "\u212a".encode())
_SECRETISH_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)


# Encoded and folded forms are looked for only for values this long: the base64 of a
# shorter one is a handful of characters that ordinary output contains by chance.
ENCODED_MIN_LENGTH = 8
# Deeper than this, ``data`` does not walk on: the whole subtree becomes MASK (the ingest
# refuses JSON this deep long before, see jsonio.MAX_DEPTH; this keeps every other caller safe).
MAX_DATA_DEPTH = 128
FOLD_CHARACTERS = " \t\r\n"
_FOLDS = re.compile("[ \t\r\n]+")
# The pre-check deletes these bytes from the batch and from every form before searching:
# whitespace (a folded copy) and, for the JSON documents, the escapes a folded copy's line
# breaks become there (\n, \r, \t). Deleting characters keeps every substring a
# substring, so the check can only say yes too often, never too seldom.
_LOOSE_BYTES = b" \t\r\n\\nrt"


def encoded_forms(value: str) -> set[str]:
    """``value`` and, if it is at least ENCODED_MIN_LENGTH long, the forms it takes when
    encoded (see the module docstring). Forms shorter than ENCODED_MIN_LENGTH are dropped."""
    forms = {value}
    if len(value) < ENCODED_MIN_LENGTH:
        return forms
    raw = value.encode()
    std = base64.b64encode(raw).decode()
    b64 = {std, std.rstrip("=")}
    for k in range(3):
        # Inside a longer stream the value starts k bytes into a 3-byte group: the characters
        # that only its bytes decide are the same whatever surrounds it.
        stream = base64.b64encode(b"\0" * k + raw + b"\0\0").decode()
        b64.add(stream[-(-8 * k // 6) : 8 * (k + len(raw)) // 6])
    forms |= b64 | {form.replace("+", "-").replace("/", "_") for form in b64}
    forms |= {raw.hex(), raw.hex().upper(), value[::-1]}
    for escaped in (quote(value, safe=""), quote(value), quote_plus(value)):
        forms |= {escaped, re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), escaped)}
    return {form for form in forms if form == value or len(form) >= ENCODED_MIN_LENGTH}


def _loose(value: str) -> bytes:
    return value.encode().translate(None, _LOOSE_BYTES)


class Redactor:
    """Masks a fixed set of values (in every form ``encoded_forms`` knows, folded or not) and
    the token shapes, in strings, bytes and JSON-like data."""

    def __init__(self, values: Iterable[str] = ()):
        unique = {v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH}
        self._sources = tuple(sorted(unique))
        forms: set[str] = set()
        for value in unique:
            forms |= encoded_forms(value)
        # Longest first, so a form that contains another is masked whole.
        ordered = sorted(forms, key=lambda f: (-len(f), f))
        self._values = tuple(ordered)
        self._short = tuple(f for f in ordered if len(f) < ENCODED_MIN_LENGTH)
        short = {f.encode() for f in self._short}
        self._short_bytes = tuple(short | {jsonio.dumps(f)[1:-1].encode() for f in self._short})
        long_forms = [f for f in ordered if len(f) >= ENCODED_MIN_LENGTH]
        needles = {_loose(f) for f in long_forms}
        needles |= {_loose(jsonio.dumps(f)[1:-1]) for f in long_forms}
        self._needles = tuple(sorted(needles, key=len, reverse=True))
        self._exact = _automaton(ordered)
        # The same forms with their own whitespace removed, matched against a string with its
        # whitespace removed: a folded copy.
        self._folded = _automaton({_FOLDS.sub("", f) for f in long_forms})

    def text(self, value: str) -> str:
        """The string with every known value (in any known form) and token shape replaced by
        ``***``. NUL characters become U+FFFD too: PostgreSQL can store them neither in text
        nor jsonb."""
        if not value:
            return value
        if "\x00" in value:
            value = value.replace("\x00", "\ufffd")
        return self._mask(value)

    def binary(self, value: bytes) -> bytes:
        """``value`` with every known value masked, reading it byte for byte (Latin-1): a
        binary file keeps its other bytes, and a UTF-8 text stays valid UTF-8 (a mask
        replaces whole characters). A compressed or otherwise transformed copy is not found."""
        if not value:
            return value
        return self._latin1()._mask(value.decode("latin-1")).encode("latin-1")

    def _latin1(self) -> Redactor:
        # The UTF-8 bytes of a non-ASCII value read as Latin-1 are other characters.
        cached = getattr(self, "_latin1_redactor", None)
        if cached is None:
            extra = [v.encode().decode("latin-1") for v in self._sources if not v.isascii()]
            cached = Redactor([*self._sources, *extra]) if extra else self
            self._latin1_redactor = cached
        return cached

    def _mask(self, value: str) -> str:
        if self._exact is not None:
            value = _masked(value, self._exact)
        if _may_hold_shape(value):
            value = _SHAPES.sub(MASK, value)
        if self._folded is None or not _FOLDS.search(value):
            return value
        stripped = _FOLDS.sub("", value)
        if next(self._folded.iter(stripped), None) is None:
            return value
        # Map the matches in the stripped string back onto the characters they came from.
        kept = [i for i, c in enumerate(value) if c not in FOLD_CHARACTERS]
        spans = [
            (kept[start], kept[end - 1] + 1) for start, end in _matches(stripped, self._folded)
        ]
        return _replaced(value, spans)

    def could_change(self, texts: list[str], documents: list[str]) -> bool:
        """Whether redacting could change any of ``texts`` or of the data that ``documents``
        hold (``jsonio.dumps`` output). False only when it cannot: no NUL; no long form of a
        value in the batch once both have lost whitespace and the letters of JSON's \\n,
        \\r, \\t escapes; no short value (nor its JSON escaping) as it is; and not the
        literal part of any token shape. All of it substring searches over the batch's
        UTF-8 bytes, a fraction of what the regular expressions cost.
        """
        blob = ("\n".join(texts) + "\n" + "\n".join(documents)).encode()
        if b"\x00" in blob or b"\\u0000" in blob:
            return True
        if self._needles:
            loose = blob.translate(None, _LOOSE_BYTES)
            if any(needle in loose for needle in self._needles):
                return True
        if any(value in blob for value in self._short_bytes):
            return True
        if any(literal in blob for literal in _SHAPE_LITERAL_BYTES):
            return True
        if any(odd in blob for odd in _CASEFOLDS_TO_ASCII):
            return True  # ſ or the Kelvin sign: they match s and k in any case
        lowered = blob.lower()
        return any(literal in lowered for literal in _SHAPE_LITERALS_ANY_CASE_BYTES)

    def data(self, value: Any, _depth: int = 0) -> Any:
        """A copy of JSON-like data with every string (keys included) redacted; a subtree
        deeper than MAX_DATA_DEPTH becomes ``***``."""
        if isinstance(value, str):
            return self.text(value)
        if _depth >= MAX_DATA_DEPTH and isinstance(value, dict | list | tuple):
            return MASK
        if isinstance(value, dict):
            return {self.text(str(k)): self.data(v, _depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v, _depth + 1) for v in value]
        return value


def _automaton(words) -> ahocorasick.Automaton | None:
    """An Aho-Corasick automaton over ``words``: one pass over a text finds all of them, where
    a regular expression of hundreds of alternatives tries each at every position."""
    words = [w for w in words if w]
    if not words:
        return None
    automaton = ahocorasick.Automaton()
    for word in words:
        automaton.add_word(word, len(word))
    automaton.make_automaton()
    return automaton


def _matches(value: str, automaton: ahocorasick.Automaton) -> list[tuple[int, int]]:
    """(start, end) of the longest, leftmost non-overlapping matches in ``value``."""
    return [(end + 1 - length, end + 1) for end, length in automaton.iter_long(value)]


def _replaced(value: str, spans: list[tuple[int, int]]) -> str:
    if not spans:
        return value
    out, at = [], 0
    for start, end in spans:
        if start < at:
            continue
        out += [value[at:start], MASK]
        at = end
    out.append(value[at:])
    return "".join(out)


def _masked(value: str, automaton: ahocorasick.Automaton) -> str:
    return _replaced(value, _matches(value, automaton))


def _may_hold_shape(value: str) -> bool:
    if any(literal in value for literal in SHAPE_LITERALS):
        return True
    lowered = value.lower() if value.isascii() else value.casefold()
    return any(literal in lowered for literal in SHAPE_LITERALS_ANY_CASE)


def model_credentials() -> list[str]:
    """The model credential values this studio hands to sandboxes (from its environment)."""
    return [
        value
        for name, value in model_env().items()
        if name in settings.MODEL_ENV_NAMES or _SECRETISH_NAME.search(name)
    ]


def sandbox_credentials(*, session_id=None, sandbox_id=None) -> list[str]:
    """Every credential the studio hands a sandbox: the runtime token of the sandbox and,
    for one of its sessions, that session's ingest token. The one list: a credential the
    studio starts handing out is added here, and every redactor masks it."""
    values = []
    if sandbox_id is not None:
        values.append(tokens.runtime_token(sandbox_id))
    if session_id is not None:
        values.append(tokens.session_token(session_id))
        # GATEWAY HOOK: the model gateway's per-session credential, once studio/tokens.py
        # mints one (the gateway branch adds tokens.gateway_token(session_id)).
        gateway_token = getattr(tokens, "gateway_token", None)
        if gateway_token is not None:
            values.append(gateway_token(session_id))
    return values


def redactor_for_session(session) -> Redactor:
    """The redactor for one session's output: its agent's secrets, its request env, the
    credentials handed to its sandbox, the model credentials. Decrypts secrets, so build
    one per batch, not per line."""
    values = [secret.reveal() for secret in Secret.objects.filter(agent_id=session.agent_id)]
    values += list(session.reveal_env().values())
    values += sandbox_credentials(session_id=session.pk, sandbox_id=session.sandbox_id)
    values += model_credentials()
    return Redactor(values)


# How many of a sandbox's sessions a sandbox redactor knows the env and tokens of: the
# newest ones (a sandbox lives for minutes; each session adds a dozen forms to match).
SANDBOX_REDACTOR_SESSIONS = 50


def redactor_for_sandbox(sandbox) -> Redactor:
    """The redactor for what a sandbox answers outside any session (exec, packages, files):
    its agent's secrets, its runtime token, the model credentials, and the request env
    values and ingest tokens of its newest SANDBOX_REDACTOR_SESSIONS sessions."""
    values = [secret.reveal() for secret in Secret.objects.filter(agent_id=sandbox.agent_id)]
    values += sandbox_credentials(sandbox_id=sandbox.pk)
    recent = Session.objects.filter(sandbox_id=sandbox.pk).order_by("-created_at")
    for session in recent.only("id", "encrypted_env")[:SANDBOX_REDACTOR_SESSIONS]:
        values += list(session.reveal_env().values())
        values += sandbox_credentials(session_id=session.pk)
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
