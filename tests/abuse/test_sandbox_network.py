"""The local sandbox's network as a boundary, attacked from inside through the public API
(POST /api/agents/{id}/sandbox/exec runs what the agent's own Bash tool could run).

Against the jail of issue 12, which shared the host's network, every attack here worked:
PostgreSQL, Redis, MariaDB, RabbitMQ, NATS, MQTT and the studio's other ports answered on
127.0.0.1, private addresses the host reaches were reachable, and no policy held. The test
hosts for private ranges are namespaces of our own (sandboxes/tests/nethosts.py).
"""

from __future__ import annotations

import shlex
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from sandboxes.backends import _build
from sandboxes.tests.conftest import create_agent
from sandboxes.tests.flow import deploy_ready
from sandboxes.tests.nethosts import (
    BLOCKED_HOSTS,
    OPEN_HOST,
    PORT,
    PROBE,
    REFUSED,
    host_loopback_ports,
    make_test_hosts,
    parse_probe,
    probe_from_host,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not all(shutil.which(t) for t in ("bwrap", "pasta", "nft")),
        reason="needs bubblewrap, pasta (passt) and nftables",
    ),
]

PLAYWRIGHT = """
import sys
from playwright.sync_api import sync_playwright
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
    # This machine's registry certificate comes from a local CA that is in the system
    # bundle (pip, npm, git, curl) but not in Chromium's own store, on the host as well.
    page = browser.new_page(ignore_https_errors=True)
    try:
        page.goto(sys.argv[1], timeout=60000)
        print("title:", page.title())
    except Exception as exc:
        print("failed:", str(exc).splitlines()[0])
    browser.close()
"""


@pytest.fixture
def local_sandboxes(settings, live_studio):
    settings.SANDBOX_BACKEND = "local"
    _build.cache_clear()
    yield live_studio
    _build.cache_clear()


@pytest.fixture(scope="module")
def test_hosts():
    with make_test_hosts():
        yield


class _Quiet(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def another_studio_port():
    """Another of the studio's own HTTP ports on loopback (a second web process, say)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _deploy(api, **fields) -> str:
    agent_id = create_agent(api, **fields)
    deploy_ready(api, agent_id, timeout=60)
    return agent_id


def _sh(api, agent_id, command: str, timeout_ms: int = 120000) -> dict:
    res = api.post(
        f"/api/agents/{agent_id}/sandbox/exec",
        {"command": command, "timeout": timeout_ms},
        format="json",
    )
    assert res.status_code == 200, res.content
    return res.json()


def _probe(api, agent_id, *targets: str) -> dict[str, str]:
    result = _sh(api, agent_id, f"python3 -c {shlex.quote(PROBE)} {' '.join(targets)}")
    assert result["exit_code"] == 0, result
    return parse_probe(result["stdout"])


def _installs(api, agent_id) -> dict:
    """pip, npm, git over https and a Playwright page load, from inside the sandbox."""
    pip = _sh(api, agent_id, "python3 -m pip install --no-deps --retries 0 --timeout 20 six")
    npm = _sh(api, agent_id, "cd /workspace && npm install --fetch-retries=0 left-pad")
    git = _sh(api, agent_id, "git ls-remote https://pypi.org/simple/six/ 2>&1; true")
    _sh(api, agent_id, f"cat > /workspace/page.py <<'EOF'\n{PLAYWRIGHT}\nEOF")
    page = _sh(api, agent_id, "python3 /workspace/page.py https://pypi.org/simple/six/")
    return {"pip": pip, "npm": npm, "git": git, "page": page}


def test_it_refuses_every_loopback_service_of_the_host_but_the_studio(
    local_sandboxes, api, another_studio_port
):
    listening = host_loopback_ports()
    for service in (5432, 6379):  # PostgreSQL and Redis run wherever the suite runs
        assert f"127.0.0.1:{service}" in listening, f"nothing listens on {service}"
    studio = urlsplit(local_sandboxes.url).port
    assert f"127.0.0.1:{another_studio_port}" in listening
    agent_id = _deploy(api)
    seen = _probe(api, agent_id, *listening)
    assert seen.pop(f"127.0.0.1:{studio}") == "open"
    seen.pop(f"[::1]:{studio}", None)
    assert set(seen.values()) <= REFUSED, {t: r for t, r in seen.items() if r not in REFUSED}
    # The studio's port is the ingest channel: it answers (and wants a session token).
    ingest = _sh(
        api,
        agent_id,
        f"curl -s -o /dev/null -w '%{{http_code}}' -X POST "
        f"{local_sandboxes.url}/api/internal/logs/append",
    )
    assert ingest["stdout"] in ("400", "401", "403"), ingest


def test_it_refuses_private_and_link_local_addresses(local_sandboxes, api, test_hosts):
    for host in (*BLOCKED_HOSTS, OPEN_HOST):
        assert probe_from_host(host) == "open", host  # the host itself reaches them
    agent_id = _deploy(api)
    seen = _probe(api, agent_id, *(f"{h}:{PORT}" for h in (*BLOCKED_HOSTS, OPEN_HOST)))
    assert seen.pop(f"{OPEN_HOST}:{PORT}") == "open"  # the default policy is open
    assert set(seen.values()) <= REFUSED, seen


def test_exec_runs_in_the_sandboxs_own_network(local_sandboxes, api):
    agent_id = _deploy(api)
    # 127.0.0.1:8080 is the runtime inside the sandbox (it wants its token), not the host's.
    result = _sh(
        api, agent_id, "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/health"
    )
    assert result["stdout"] == "401", result


def test_the_sandbox_cannot_change_its_network_rules(local_sandboxes, api, test_hosts):
    agent_id = _deploy(api, network_policy="none")
    flush = _sh(api, agent_id, "nft flush ruleset; ip link set lo down; echo rc=$?")
    assert "rc=0" not in flush["stdout"], flush
    seen = _probe(api, agent_id, f"{OPEN_HOST}:{PORT}", f"{BLOCKED_HOSTS[0]}:{PORT}")
    assert set(seen.values()) <= REFUSED, seen


def test_open_lets_pip_npm_git_and_a_browser_out(local_sandboxes, api):
    agent_id = _deploy(api, network_policy="open")
    done = _installs(api, agent_id)
    assert done["pip"]["exit_code"] == 0, done["pip"]
    assert done["npm"]["exit_code"] == 0, done["npm"]
    assert "not found" in done["git"]["stdout"], done["git"]  # an https answer from the server
    assert "title: Links for six" in done["page"]["stdout"], done["page"]


def test_allowlist_lets_pip_in_and_keeps_npm_out(local_sandboxes, api, test_hosts):
    agent_id = _deploy(
        api, network_policy="allowlist", network_allowlist=["pypi.org", "*.pythonhosted.org"]
    )
    done = _installs(api, agent_id)
    assert done["pip"]["exit_code"] == 0, done["pip"]
    assert done["npm"]["exit_code"] != 0, done["npm"]
    assert "403" in done["npm"]["stdout"] + done["npm"]["stderr"], done["npm"]
    assert "not found" in done["git"]["stdout"], done["git"]
    assert "title: Links for six" in done["page"]["stdout"], done["page"]
    # Around the proxy, nothing gets out: not the listed registry, not a public address.
    direct = _sh(api, agent_id, "curl -s -m 10 --noproxy '*' https://pypi.org/ ; echo rc=$?")
    assert "rc=0" not in direct["stdout"], direct
    assert set(_probe(api, agent_id, f"{OPEN_HOST}:{PORT}").values()) <= REFUSED


def test_none_blocks_pip_and_npm_and_keeps_the_studio(local_sandboxes, api):
    agent_id = _deploy(api, network_policy="none")
    done = _installs(api, agent_id)
    assert done["pip"]["exit_code"] != 0, done["pip"]
    assert done["npm"]["exit_code"] != 0, done["npm"]
    assert "title:" not in done["page"]["stdout"], done["page"]
    studio = urlsplit(local_sandboxes.url).port
    assert _probe(api, agent_id, f"127.0.0.1:{studio}") == {f"127.0.0.1:{studio}": "open"}
