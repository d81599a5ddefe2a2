"""The image definition, the E2B template built from it, and the bundled example skill."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from agent_runtime.e2b_template import TOKEN_FILE, TemplateBuildError, build_template, template

HERE = Path(__file__).resolve().parents[1]


def test_the_template_starts_the_server_with_a_token_file_and_waits_for_the_port():
    from e2b import Template

    definition = json.loads(Template.to_json(template()))
    assert f"RUNTIME_TOKEN_FILE={TOKEN_FILE}" in definition["startCmd"]
    assert "python -m agent_runtime serve --port 8080" in definition["startCmd"]
    assert "sport = :8080" in definition["readyCmd"]  # a port check: works before the token
    copies = [s["args"] for s in definition["steps"] if s["type"] == "COPY"]
    assert ["agent_runtime", "/opt/agent_runtime/agent_runtime"] in [c[:2] for c in copies]


def test_building_without_an_api_key_says_so():
    with pytest.raises(TemplateBuildError, match="E2B_API_KEY"):
        build_template(api_key="")


def test_the_dockerfile_runs_the_server_as_user_1000():
    dockerfile = (HERE / "Dockerfile").read_text()
    assert dockerfile.startswith("# ") and "FROM ubuntu:22.04" in dockerfile
    assert "--uid 1000" in dockerfile and "USER user" in dockerfile
    assert "playwright install --with-deps chromium" in dockerfile
    assert re.search(
        r'CMD \["python", "-m", "agent_runtime", "serve", "--port", "8080"', dockerfile
    )


def test_the_web_scraping_skill_has_front_matter():
    text = (HERE / "skills" / "web-scraping" / "SKILL.md").read_text()
    front = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert front
    fields = dict(line.split(": ", 1) for line in front.group(1).splitlines())
    assert fields["name"] == "web-scraping"
    assert "Playwright" in fields["description"]
