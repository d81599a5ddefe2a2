"""The seed guide's API calls, with its bodies as written, on both backends (the E2B one
through the real SDK against the double), then the state they leave read back."""

from __future__ import annotations

import pytest

from sandboxes.tests.conftest import create_agent, host_ca_env
from sandboxes.tests.flow import all_lines, deploy_ready, session_done

pytestmark = pytest.mark.django_db(transaction=True)

ENV_SCRIPT = {
    "marker": "[[guide-env]]",
    "turns": [
        [
            {
                "type": "tool_use",
                "name": "Bash",
                "input": {"command": 'echo "target has ${#TARGET_URL} characters"'},
            }
        ],
        [{"type": "text", "text": "Done."}],
    ],
}


def test_the_guides_calls_work_as_written(live_studio, scripted_model, api, backend):
    scripted_model.add_script(ENV_SCRIPT)
    agent_id = create_agent(api, name="web-scraper", env=host_ca_env())
    base = f"/api/agents/{agent_id}"

    # deploy
    res = api.post(f"{base}/deploy", {}, format="json")
    assert res.status_code == 202, res.content
    deploy_ready(api, agent_id, timeout=60)

    # execute, with env
    res = api.post(
        f"{base}/execute",
        {"prompt": "[[guide-env]] Scrape the site", "env": {"TARGET_URL": "https://example.com"}},
        format="json",
    )
    assert res.status_code == 202, res.content
    session = session_done(api, res.json()["session_id"])
    assert session["status"] == "completed", session
    # (request env values are masked in logs like secrets, hence the length)
    assert any("target has 19 characters" in line["text"] for line in all_lines(api, session["id"]))

    # files
    res = api.post(
        f"{base}/sandbox/files",
        {
            "files": [
                {"path": "/workspace/config.json", "content": '{"url": "https://example.com"}'}
            ]
        },
        format="json",
    )
    assert res.status_code == 200 and res.json() == {"written": ["/workspace/config.json"]}

    # packages: npm packages, as in the guide (its runtime is Node)
    res = api.post(f"{base}/sandbox/packages", {"packages": ["playwright", "axios"]}, format="json")
    assert res.status_code == 200, res.content
    assert res.json()["exit_code"] == 0, res.json()

    # exec, timeout in milliseconds
    res = api.post(
        f"{base}/sandbox/exec",
        {
            "command": "node -e \"const a = require('axios'); console.log(typeof a.get)\" "
            "&& node -e \"console.log(Object.keys(require('playwright')).includes('chromium'))\"",
            "timeout": 30000,
        },
        format="json",
    )
    assert res.status_code == 200, res.content
    assert res.json()["stdout"].split() == ["function", "true"], res.json()
    # ...and nothing came from PyPI under the same names.
    res = api.post(
        f"{base}/sandbox/exec",
        {"command": "python3 -m pip show axios; echo exit=$?", "timeout": 30000},
        format="json",
    )
    assert "exit=1" in res.json()["stdout"], res.json()

    # stop, then the deployment reads back as stopped (not a 404)
    res = api.post(f"{base}/stop", {}, format="json")
    assert res.status_code == 202 and res.json()["deployment"]["status"] == "stopped"
    res = api.get(f"{base}/sandbox")
    assert res.status_code == 200, res.content
    assert res.json()["deployment"]["status"] == "stopped"


def test_pip_stays_available_with_manager_pip(live_studio, api, local):
    agent_id = create_agent(api)
    deploy_ready(api, agent_id)
    res = api.post(
        f"/api/agents/{agent_id}/sandbox/packages",
        {"packages": ["six==1.17.0"], "manager": "pip"},
        format="json",
    )
    assert res.status_code == 200 and res.json()["exit_code"] == 0, res.json()
    res = api.post(
        f"/api/agents/{agent_id}/sandbox/exec",
        {"command": "python3 -c 'import six; print(six.__version__)'"},
        format="json",
    )
    assert res.json()["stdout"].strip() == "1.17.0"
    api.post(f"/api/agents/{agent_id}/stop")


def test_an_agent_never_deployed_is_the_only_404(live_studio, api, local):
    agent_id = create_agent(api)
    res = api.get(f"/api/agents/{agent_id}/sandbox")
    assert res.status_code == 404
    assert "never been deployed" in res.json()["message"]
