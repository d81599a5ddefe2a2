from __future__ import annotations

import base64
import json
import re
import urllib.parse

import pytest

from agents.models import Secret
from logs import jsonio
from logs.models import LogLine
from logs.redaction import (
    Redactor,
    redactor_for_sandbox,
    redactor_for_session,
    sandbox_credentials,
)
from logs.tests.conftest import line
from sandboxes.models import Sandbox
from studio.tokens import runtime_token, session_token

SECRET = "hunter2-very-secret"
ENV_VALUE = "env-value-from-request"


def test_it_masks_known_values_in_text():
    assert Redactor(["s3cr3t!"]).text("pw=s3cr3t! ok") == "pw=*** ok"


def test_it_masks_the_longer_of_two_overlapping_values_whole():
    assert Redactor(["abcd", "abcdefgh"]).text("x abcdefgh y") == "x *** y"


def test_it_ignores_trivially_short_values():
    assert Redactor(["ab", "", None]).text("ab cab") == "ab cab"


def test_it_escapes_regex_characters_in_values():
    assert Redactor(["a.b*c(d"]).text("a.b*c(d axbbc(d") == "*** axbbc(d"


SHAPE_SAMPLES = [
    "sk-ant-api03-AbCdEf0123456789_-xyz",
    "sk-ant-oat01-AbCdEf0123456789",
    "ghp_" + "a1B2" * 9,
    "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
    "AKIAIOSFODNN7EXAMPLE",
    "xoxb-123456789012-abcdefghij",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
]


@pytest.mark.parametrize("token", SHAPE_SAMPLES)
def test_it_masks_well_known_token_shapes(token):
    assert Redactor().text(f"token: {token} end") == "token: *** end"


def test_it_masks_aws_secret_keys_after_their_name():
    text = "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    assert "wJalr" not in Redactor().text(text)


def test_it_redacts_data_recursively_keys_included():
    data = {"a": [SECRET, {"b": f"x{SECRET}x"}], SECRET: 1, "n": 3, "none": None}
    assert Redactor([SECRET]).data(data) == {
        "a": ["***", {"b": "x***x"}],
        "***": 1,
        "n": 3,
        "none": None,
    }


ODD_SECRET = 'quo"te\\back\nline-é-secret'


@pytest.mark.parametrize(
    ("texts", "data"),
    [
        ([f"echo {SECRET}"], None),
        (["clean"], {"a": ["x", {"b": f"x{SECRET}x"}]}),  # deep in data
        (["clean"], {SECRET: 1}),  # a key
        ([f"cat {ODD_SECRET}"], None),  # characters JSON escapes, in text
        (["clean"], {"v": [f"<{ODD_SECRET}>"]}),  # and in data
        (["nul \x00 inside"], None),  # NULs are replaced too
        (["clean"], {"nul": "\x00"}),
        *(([f"a {token} b"], None) for token in SHAPE_SAMPLES),
        *((["clean"], {"k": [f"a {token} b"]}) for token in SHAPE_SAMPLES),
        (["AWS_Secret_Access_Key: " + "A" * 40], None),
        (["aws_\u017fecret_access_key=" + "A" * 40], None),  # ſ matches s in any case
    ],
)
def test_a_batch_with_anything_to_redact_could_change(texts, data):
    redactor = Redactor([SECRET, ODD_SECRET])
    documents = [] if data is None else [jsonio.dumps(data)]
    assert redactor.could_change(texts, documents)
    # and redaction does change it, so the check is not merely loose
    assert [redactor.text(t) for t in texts] != texts or redactor.data(data) != data


def test_a_clean_batch_could_not_change():
    redactor = Redactor([SECRET, ODD_SECRET])
    data = [None, {"k": ["v", 1, True, "é"]}, ""]
    assert not redactor.could_change(["plain", "", "ünïcode"], [jsonio.dumps(d) for d in data])
    assert not redactor.could_change([], [])


def test_the_session_redactor_knows_secrets_env_and_model_credentials(
    agent, make_session, monkeypatch, settings
):
    secret = Secret(agent=agent, name="API_TOKEN")
    secret.set_value(SECRET)
    secret.save()
    session = make_session()
    session.set_env({"MY_VAR": ENV_VALUE})
    session.save()
    monkeypatch.setenv("ANTHROPIC_API_KEY", "model-credential-123")
    monkeypatch.setenv("CLAUDE_CODE_OAUTH_TOKEN", "oauth-credential-456")
    monkeypatch.setenv("CLAUDE_CODE_EXTRA_SECRET", "extra-credential-789")
    monkeypatch.setenv("CLAUDE_CODE_ENABLE_TELEMETRY", "true")
    redactor = redactor_for_session(session)
    text = (
        f"{SECRET} {ENV_VALUE} model-credential-123 oauth-credential-456 extra-credential-789 true"
    )
    assert redactor.text(text) == "*** *** *** *** *** true"


def test_it_redacts_before_storage(append, agent, make_session, monkeypatch):
    secret = Secret(agent=agent, name="API_TOKEN")
    secret.set_value(SECRET)
    secret.save()
    session = make_session()
    session.set_env({"X": ENV_VALUE})
    session.save()
    monkeypatch.setenv("ANTHROPIC_API_KEY", "model-credential-123")
    batch = [
        line(1, text=f"echo {SECRET} {ENV_VALUE}", data={"cmd": [SECRET, "model-credential-123"]}),
        line(
            2,
            "result",
            data={"status": "failed", "error": f"bad key {SECRET}"},
        ),
    ]
    r = append(session, batch, status={"status": "failed", "error": SECRET})
    assert r.status_code == 200
    first, second = LogLine.objects.filter(session=session).order_by("seq")
    assert first.text == "echo *** ***"
    assert first.data == {"cmd": ["***", "***"]}
    assert second.data["error"] == "bad key ***"
    session.refresh_from_db()
    assert session.error == "bad key ***"


# ---- encoded and folded forms ----------------------------------------------------------

LONG = "sk-studio-secret-Zr5TnYh2Lq8vW/+x"  # '/' and '+' so base64 and URL forms differ
RAW = LONG.encode()


def _b64_core(prefix: bytes) -> str:
    stream = base64.b64encode(prefix + RAW + b"tail").decode()
    start = -(-len(prefix) * 8 // 6)
    return stream, stream[start : (len(prefix) + len(RAW)) * 8 // 6]


ENCODED = {
    "base64": base64.b64encode(RAW).decode(),
    "base64 without padding": base64.b64encode(RAW).decode().rstrip("="),
    "base64url": base64.urlsafe_b64encode(RAW).decode(),
    "base64, 1 byte into a stream": _b64_core(b"a")[0],
    "base64, 2 bytes into a stream": _b64_core(b"ab")[0],
    "base64, 3 bytes into a stream": _b64_core(b"abc")[0],
    "base64url, 1 byte into a stream": base64.urlsafe_b64encode(b"\xfb" + RAW).decode(),
    "base64url, 2 bytes into a stream": base64.urlsafe_b64encode(b"\xfb\xff" + RAW).decode(),
    "hex": RAW.hex(),
    "HEX": RAW.hex().upper(),
    "URL-encoded": urllib.parse.quote(LONG, safe=""),
    "URL-encoded, lower-case escapes": re.sub(
        "%[0-9A-F]{2}", lambda m: m.group().lower(), urllib.parse.quote(LONG, safe="")
    ),
    "form-encoded": urllib.parse.urlencode({"k": LONG}),
    "reversed": LONG[::-1],
    "folded by newlines": "\n".join(LONG[i : i + 5] for i in range(0, len(LONG), 5)),
    "folded by CRLF and tabs": "\r\n\t".join(LONG[i : i + 3] for i in range(0, len(LONG), 3)),
    "one character a line": "\n".join(LONG),
    "base64 wrapped at 76": "\n".join(
        (lambda e: [e[i : i + 76] for i in range(0, len(e), 76)])(
            base64.b64encode(b"x" * 100 + RAW).decode()
        )
    ),
    "hex with spaces (od)": " ".join(RAW.hex()[i : i + 2] for i in range(0, 2 * len(RAW), 2)),
}


def _leaked(text: str) -> bool:
    squeezed = re.sub(r"\s", "", text)
    cores = [_b64_core(p)[1] for p in (b"", b"a", b"ab", b"abc")]
    forms = [LONG, LONG[::-1], RAW.hex(), RAW.hex().upper(), *cores]
    forms += [c.replace("+", "-").replace("/", "_") for c in cores]
    forms += [urllib.parse.quote(LONG, safe="")]
    return any(form in text or form in squeezed for form in forms)


@pytest.mark.parametrize("name", sorted(ENCODED))
def test_it_masks_every_encoded_and_folded_form(name):
    encoded = ENCODED[name]
    assert _leaked(encoded) or name.startswith(("base64url, ", "form-", "URL-encoded, lower"))
    redactor = Redactor([LONG])
    text = f"before {encoded} after"
    masked = redactor.text(text)
    assert "***" in masked and not _leaked(masked), masked
    assert masked.startswith("before ") and masked.endswith(" after")
    data = {"out": [text]}
    assert redactor.could_change(["clean"], [jsonio.dumps(data)])
    assert redactor.could_change([text], [])
    assert not _leaked(json.dumps(redactor.data(data)))
    assert b"***" in redactor.binary(text.encode())
    assert not _leaked(redactor.binary(text.encode()).decode())


def test_it_masks_a_non_ascii_secret_in_a_binary_file():
    secret = "clé-secrète-très-longue"
    blob = b"\x00\xff" + secret.encode() + b"\x80" + base64.b64encode(secret.encode())
    assert Redactor([secret]).binary(blob) == b"\x00\xff***\x80***"


def test_short_values_are_masked_only_as_they_are():
    redactor = Redactor(["abcd123"])  # below ENCODED_MIN_LENGTH
    assert redactor.text("abcd123 321dcba") == "*** 321dcba"


def test_a_clean_batch_stays_clean_with_many_forms_to_look_for():
    redactor = Redactor([LONG, SECRET, ENV_VALUE, "x" * 64])
    texts = [f"\x1b[2m⎿\x1b[0m line {i}: compiled module_{i}.py ok" for i in range(300)]
    docs = [jsonio.dumps({"content": [{"text": t, "n": i}]}) for i, t in enumerate(texts)]
    assert not redactor.could_change(texts, docs)


def test_the_redactor_never_recurses_without_bound():
    deep: object = "hunter2-very-secret"
    for _ in range(100_000):
        deep = [deep]
    masked = Redactor([SECRET]).data({"a": deep})
    depth, node = 0, masked["a"]
    while isinstance(node, list):
        depth, node = depth + 1, node[0]
    assert node == "***" and depth < 200


def test_the_session_redactor_knows_the_credentials_handed_to_its_sandbox(agent, make_session):
    sandbox = Sandbox.objects.create(agent=agent, backend="local", status="ready")
    session = make_session(sandbox=sandbox)
    ingest, runtime = session_token(session.pk), runtime_token(sandbox.pk)
    b64 = base64.b64encode(ingest.encode()).decode()
    text = f"{ingest} {runtime} {b64} {ingest[::-1]}"
    assert redactor_for_session(session).text(text) == "*** *** *** ***"
    assert redactor_for_sandbox(sandbox).text(text) == "*** *** *** ***"


def test_the_model_gateway_credential_is_masked_in_its_sessions_output(agent, make_session):
    """The gateway's per-session credential joins every redactor through
    sandbox_credentials, the one list."""
    from studio import tokens

    session = make_session()
    credential = tokens.model_token(session.pk)
    assert redactor_for_session(session).text(f"key {credential}") == "key ***"
    assert credential in sandbox_credentials(session_id=session.pk)


def test_a_line_the_studio_writes_is_redacted_too(agent, make_session):
    from logs.services import studio_line_append

    secret = Secret(agent=agent, name="API_TOKEN")
    secret.set_value(SECRET)
    secret.save()
    session = make_session()
    b64 = base64.b64encode(SECRET.encode()).decode()
    line = studio_line_append(session=session, kind="error", text=f"runtime said {b64}")
    assert SECRET not in line.text and b64 not in line.text and "***" in line.text
    assert LogLine.objects.get(pk=line.pk).text == line.text
