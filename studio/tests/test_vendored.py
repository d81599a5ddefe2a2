"""The servers refuse to start without the vendored front-end files, saying what to run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command

from studio.management.commands.runstudio import served_url
from studio.vendored import VENDORED


def test_the_checked_files_are_the_ones_the_templates_load():
    loaded = set()
    for template in Path(django_settings.BASE_DIR, "templates").rglob("*.html"):
        loaded |= set(re.findall(r"""{% static ['"](vendor/[^'"]+)['"] %}""", template.read_text()))
    assert loaded == set(VENDORED)


@pytest.mark.parametrize("command", ["runstudio", "serve"])
def test_it_refuses_to_start_without_static_vendor_and_says_to_run_make_setup(
    command, settings, tmp_path
):
    (tmp_path / "css").mkdir()  # a static dir without vendor/
    settings.STATICFILES_DIRS = [tmp_path]
    with pytest.raises(CommandError, match=r"make setup") as caught:
        call_command(command, "--port", "1")
    assert "vendor/xterm/xterm.js" in str(caught.value)


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8100"),
        ("0.0.0.0", "http://127.0.0.1:8100"),
        ("::", "http://[::1]:8100"),
        ("10.1.2.3", "http://10.1.2.3:8100"),
        ("localhost", "http://localhost:8100"),
    ],
)
def test_sandboxes_reach_the_address_runstudio_serves_on(host, url):
    assert served_url(host, 8100) == url
