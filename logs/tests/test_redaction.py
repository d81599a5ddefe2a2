from __future__ import annotations

import pytest

from agents.models import Secret
from logs import jsonio
from logs.models import LogLine
from logs.redaction import Redactor, redactor_for_session
from logs.tests.conftest import line

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
