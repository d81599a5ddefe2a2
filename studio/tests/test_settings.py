from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from studio import env

ROOT = Path(__file__).resolve().parents[2]
PROD = {
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "SECRET_KEY": "t3st-Only-6b1f0c9e2d4a8f7e5c3b1a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4",
    "INTERNAL_API_KEY": "internal-key-for-tests",
    "ALLOWED_HOSTS": "studio.example.com",
}


def manage(*args, extra_env=None, drop=()):
    environ = {k: v for k, v in os.environ.items() if k not in drop}
    # Start from defaults, whatever mode this test run itself is in.
    for name in ("DATABASE_URL", "REDIS_URL", "DEBUG", "SECURE_SSL_REDIRECT", "SECURE_COOKIES"):
        environ.pop(name, None)
    environ.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_it_rejects_a_bad_integer(monkeypatch):
    monkeypatch.setenv("SANDBOX_TIMEOUT_SECONDS", "soon")
    with pytest.raises(env.ConfigError, match="SANDBOX_TIMEOUT_SECONDS='soon' is not an integer"):
        env.env_int("SANDBOX_TIMEOUT_SECONDS", 1800)


def test_it_rejects_a_bad_boolean(monkeypatch):
    monkeypatch.setenv("DEBUG", "maybe")
    with pytest.raises(env.ConfigError, match="not a boolean"):
        env.env_bool("DEBUG")


def test_it_rejects_a_value_below_the_minimum(monkeypatch):
    monkeypatch.setenv("SANDBOX_TIMEOUT_SECONDS", "5")
    with pytest.raises(env.ConfigError, match="at least 60"):
        env.env_int("SANDBOX_TIMEOUT_SECONDS", 1800, minimum=60)


def test_it_rejects_an_unknown_choice(monkeypatch):
    monkeypatch.setenv("SANDBOX_BACKEND", "docker")
    with pytest.raises(env.ConfigError, match="must be one of: local, e2b"):
        env.env_choice("SANDBOX_BACKEND", ("local", "e2b"), "local")


def test_it_reads_a_secret_from_a_file(monkeypatch, tmp_path):
    (tmp_path / "key").write_text("from-a-file\n")
    monkeypatch.setenv("INTERNAL_API_KEY_FILE", str(tmp_path / "key"))
    assert env.env_str("INTERNAL_API_KEY") == "from-a-file"


def test_a_missing_secret_file_fails_loudly(monkeypatch, tmp_path):
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "nope"))
    with pytest.raises(env.ConfigError, match="SECRET_KEY_FILE"):
        env.env_str("SECRET_KEY")


@pytest.mark.parametrize("missing", ["SECRET_KEY", "INTERNAL_API_KEY"])
def test_production_refuses_to_start_without_its_keys(missing):
    extra = {k: v for k, v in PROD.items() if k != missing}
    result = manage("check", extra_env=extra, drop=(missing,))
    assert result.returncode != 0
    assert f"{missing} must be set in production mode" in result.stderr


def test_check_deploy_is_clean_under_production_settings():
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", extra_env={**PROD, "DEBUG": "false"}
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_embedded_mode_generates_and_keeps_its_keys(tmp_path):
    data = {"STUDIO_DATA_DIR": str(tmp_path)}
    code = "from django.conf import settings as s; print(s.SECRET_KEY, s.INTERNAL_API_KEY)"
    first = manage("shell", "-c", code, extra_env=data)
    second = manage("shell", "-c", code, extra_env=data)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert (tmp_path / "local-keys.json").stat().st_mode & 0o777 == 0o600


PAGES = """
from django.conf import settings
from django.test import Client
client = Client()
missing = client.get("/no/such/page/")
print(settings.DEBUG, client.get("/login/").status_code,
      client.get("/static/js/term_safe.js").status_code,
      missing.status_code, "URLconf" in missing.content.decode())
"""


def test_embedded_mode_runs_without_debug_and_still_serves_its_pages(tmp_path):
    result = manage("shell", "-c", PAGES, extra_env={"STUDIO_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    # DEBUG off; sign-in page and its static files served; a 404 is the plain page, not
    # Django's debug page listing every URL pattern.
    assert result.stdout.strip().splitlines()[-1].split() == ["False", "200", "200", "404", "False"]


def test_debug_is_on_in_embedded_mode_only_when_asked(tmp_path):
    extra = {"STUDIO_DATA_DIR": str(tmp_path), "DEBUG": "true"}
    result = manage("shell", "-c", PAGES, extra_env=extra)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == ["True", "200", "200", "404", "True"]
