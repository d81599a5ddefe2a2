from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command


def test_it_explains_what_to_set_without_an_e2b_key(settings):
    settings.E2B_API_KEY = ""
    with pytest.raises(CommandError, match="E2B_API_KEY is not set"):
        call_command("build_template")
