from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command


def test_it_explains_what_to_set_without_an_e2b_key(settings):
    settings.E2B_API_KEY = ""
    with pytest.raises(CommandError, match="E2B_API_KEY is not set"):
        call_command("build_template")


def test_the_template_keeps_the_runtime_log_where_the_backend_reads_it():
    from agent_runtime.e2b_template import RUNTIME_LOG, START_CMD
    from sandboxes.backends import e2b

    assert START_CMD.endswith(f"| tee -a {RUNTIME_LOG}")
    assert e2b.RUNTIME_LOG == RUNTIME_LOG


def test_the_readme_gives_the_e2b_cli_the_same_start_and_ready_commands():
    import json
    from pathlib import Path

    from e2b import Template

    from agent_runtime.e2b_template import template

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    definition = json.loads(Template.to_json(template()))
    assert f'--cmd "{definition["startCmd"]}"' in readme
    assert f"--ready-cmd '{definition['readyCmd']}'" in readme
