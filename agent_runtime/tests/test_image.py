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
    assert [".", "/opt/agent_runtime/agent_runtime"] in [c[:2] for c in copies]


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


def _dockerfile_arg(name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)$", (HERE / "Dockerfile").read_text(), re.M)
    assert match, name
    return match.group(1)


def test_node_and_python_playwright_are_pinned_to_the_same_driver():
    # Both look for the browsers their driver names; one Chromium serves both only when the
    # npm package is the version the Python package bundles.
    from importlib.metadata import version

    import playwright

    driver = Path(playwright.__file__).parent / "driver" / "package" / "package.json"
    assert _dockerfile_arg("PLAYWRIGHT_NPM_VERSION") == json.loads(driver.read_text())["version"]
    pins = (HERE / "requirements.txt").read_text()
    assert f"playwright=={version('playwright')}" in pins


def test_the_image_has_node_lts_and_one_browsers_directory_for_both_playwrights():
    dockerfile = (HERE / "Dockerfile").read_text()
    assert int(_dockerfile_arg("NODE_MAJOR")) % 2 == 0  # even majors are Node's LTS lines
    assert "apt-get install -y --no-install-recommends nodejs" in dockerfile
    assert (
        'npm install -g --no-audit --no-fund "playwright@${PLAYWRIGHT_NPM_VERSION}"' in dockerfile
    )
    assert "npx playwright install --with-deps chromium" in dockerfile
    # Login shells (E2B's commands.run: the exec and packages API) see what the runtime sees.
    for name, value in [
        ("NODE_PATH", "/usr/lib/node_modules"),
        ("PLAYWRIGHT_BROWSERS_PATH", "/opt/ms-playwright"),
    ]:
        assert f"{name}={value}" in dockerfile
        assert f"'export {name}={value}'" in dockerfile
    assert "/etc/profile.d/agent-studio.sh" in dockerfile
    assert "chown -R user:user /workspace /home/user /opt/venv /opt/ms-playwright" in dockerfile
