"""`make run PORT=…`: an embedded studio on another port, BACKEND_API_URL unset, still
receives its runs' lines (the sandboxes are told where it listens)."""

from __future__ import annotations

import pytest

from sandboxes.tests.flow import all_lines, session_done
from studio.testing.scripts import ticking_script
from tests.faults.conftest import HttpApi, assert_complete_log

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_studio_on_another_port_delivers_a_runs_lines_without_backend_api_url(
    scripted_model, start_studio, token, settings
):
    if not settings.EMBEDDED:
        pytest.skip("BACKEND_API_URL follows runstudio's address in embedded mode only")
    scripted_model.add_script(ticking_script(2, 0.1))
    studio = start_studio(BACKEND_API_URL="")  # as `make run PORT=<free port>` starts it
    assert studio.port != 8000
    api = HttpApi(studio.base, token)
    agent_id = api.post("/api/agents/", {"name": "ticker"}).json()["id"]
    res = api.post(f"/api/agents/{agent_id}/execute", {"prompt": "[[ticks]] count"})
    assert res.status_code == 202, res.text
    session = session_done(api, res.json()["session_id"], timeout=90)
    assert session["status"] == "completed", session
    lines = all_lines(api, session["id"])
    assert_complete_log(lines)
    assert any("tick-2" in line["text"] for line in lines)
    api.post(f"/api/agents/{agent_id}/stop")
