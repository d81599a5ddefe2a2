"""local_net: the rules as data, and real namespaces (pasta, nftables, the proxy) probed from
inside as an unprivileged uid, the way a jail's processes are. The full jail is attacked
through the API in tests/abuse/test_sandbox_network.py."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sandboxes.backends import local_net
from sandboxes.backends.base import BackendError
from sandboxes.backends.local_jail import proc_start_time
from sandboxes.backends.local_proxy import host_allowed
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

needs_tools = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in ("pasta", "nft", "ip", "nsenter")),
    reason="needs root, pasta (passt), nftables and iproute2",
)
JAIL_UID = 1365000  # an unprivileged uid like a sandbox's (from SANDBOX_UID_RANGE)


# --- the policy as data ---------------------------------------------------------------


def test_the_blocklist_is_explicit_ranges_not_pythons_is_private():
    v4, v6 = local_net.blocked_networks(["192.0.2.2/24"])
    nets = [ipaddress.ip_network(n) for n in v4 + v6]

    def blocked(address):
        return any(ipaddress.ip_address(address) in n for n in nets)

    # The registries here resolve into a documentation range Python calls private.
    assert ipaddress.ip_address("203.0.113.80").is_private
    assert not blocked("203.0.113.80")
    for address in ("10.255.255.53", "127.0.0.1", "169.254.169.254", "172.16.0.1"):
        assert blocked(address), address
    for address in ("192.168.1.1", "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255"):
        assert blocked(address), address
    for address in ("::1", "fd00::1", "fe80::1", "::ffff:127.0.0.1", "64:ff9b::a00:1"):
        assert blocked(address), address
    assert blocked("192.0.2.2") and blocked("192.0.2.77")  # the host's address and its link


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("pypi.org", True),
        ("PyPI.org.", True),
        ("evilpypi.org", False),
        ("pypi.org.evil.com", False),
        ("files.pythonhosted.org", True),
        ("a.b.pythonhosted.org", True),
        ("pythonhosted.org", False),  # *.domain is its subdomains, not the domain
        ("xpythonhosted.org", False),
        ("10.77.0.2", False),
    ],
)
def test_the_allowlist_matches_names_exactly_or_as_subdomains(host, allowed):
    assert host_allowed(host, ["pypi.org", "*.pythonhosted.org"]) is allowed


def test_dns_servers_come_from_resolv_conf_without_loopback_ones(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.53\nnameserver 10.255.255.53\nnameserver fd00::53\n")
    assert local_net.host_resolvers(str(conf)) == ["10.255.255.53", "fd00::53"]


def test_none_allows_nothing_but_the_namespaces_own_loopback():
    rules = local_net.nft_ruleset(policy="none", blocked4=["10.0.0.0/8"], blocked6=[], resolvers=[])
    lines = [line.strip() for line in rules.splitlines()]
    accepts = [line for line in lines if line.endswith("accept")]
    assert accepts == ['oif "lo" accept', "ct state established,related accept"]
    assert "policy drop;" in rules


# --- real namespaces --------------------------------------------------------------------


class _Studio(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"studio")

    def log_message(self, *args):
        pass


@pytest.fixture
def studio_port():
    """A stand-in for the studio's HTTP port on the host's loopback."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Studio)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def test_hosts():
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("needs root and iproute2")
    with make_test_hosts():
        yield


@pytest.fixture
def network(tmp_path, studio_port):
    """start(policy=..., allowlist=...) -> state; every namespace made is stopped after."""
    made = []

    def start(policy, allowlist=()):
        state_path = tmp_path / f"net-{len(made)}.json"
        made.append(state_path)
        return local_net.start(
            name=f"as-test-{os.getpid()}-{len(made)}",
            policy=policy,
            allowlist=allowlist,
            studio_urls=[f"http://127.0.0.1:{studio_port}/"],
            runtime_port=local_net.free_port(),
            state_path=state_path,
            log_path=tmp_path / "net.log",
        )

    yield start
    for path in made:
        local_net.stop(path)


def run_inside(state, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run argv in the namespace as an unprivileged uid, with the jail's proxy settings."""
    return subprocess.run(
        [
            *local_net.enter_argv(state),
            *("setpriv", f"--reuid={JAIL_UID}", f"--regid={JAIL_UID}", "--clear-groups"),
            *argv,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", **local_net.jail_env(state)},
    )


def probe(state, *targets: str) -> dict[str, str]:
    done = run_inside(state, "/usr/bin/python3", "-c", PROBE, *targets)
    assert done.returncode == 0, done.stderr
    return parse_probe(done.stdout)


def curl(state, url: str, *flags: str, show: str = "%{http_code}") -> str:
    """What curl saw: the HTTP status by default, "000" if it got no response at all."""
    argv = ["curl", "-s", "-m", "20", "-o", "/dev/null", "-w", show, *flags, url]
    return run_inside(state, *argv).stdout.strip()


@needs_tools
def test_it_refuses_private_and_link_local_addresses_that_the_host_reaches(network, test_hosts):
    for host in (*BLOCKED_HOSTS, OPEN_HOST):
        assert probe_from_host(host) == "open", host  # so refusing them is the sandbox's doing
    state = network("open")
    seen = probe(state, *(f"{h}:{PORT}" for h in (*BLOCKED_HOSTS, OPEN_HOST)))
    assert seen.pop(f"{OPEN_HOST}:{PORT}") == "open"  # `open` is not `none`
    assert set(seen.values()) <= REFUSED, seen


@needs_tools
def test_it_refuses_every_loopback_service_of_the_host_but_the_studios_port(network, studio_port):
    listening = host_loopback_ports()
    assert f"127.0.0.1:{studio_port}" in listening
    state = network("open")
    seen = probe(state, *listening)
    assert seen.pop(f"127.0.0.1:{studio_port}") == "open"
    seen.pop(f"[::1]:{studio_port}", None)
    assert set(seen.values()) <= REFUSED, {t: r for t, r in seen.items() if r not in REFUSED}
    # The host's own addresses, on every port listening on all of them, are closed too.
    others = [
        f"{n.split('/')[0]}:{port}"
        for n in local_net.host_networks()
        if "/" not in n and ipaddress.ip_address(n).version == 4 and not n.startswith("127.")
        for port in set(listening.values())
    ]
    assert set(probe(state, *others).values()) <= REFUSED


@needs_tools
def test_open_resolves_names_and_reaches_the_registries(network):
    state = network("open")
    assert run_inside(state, "getent", "hosts", "pypi.org").returncode == 0
    assert curl(state, "https://pypi.org/simple/six/") == "200"


@needs_tools
def test_none_has_no_dns_and_no_way_out_but_the_studio(network, test_hosts, studio_port):
    state = network("none")
    assert run_inside(state, "getent", "hosts", "pypi.org").returncode != 0
    seen = probe(state, f"{OPEN_HOST}:{PORT}", f"127.0.0.1:{studio_port}", "10.255.255.53:53")
    assert seen.pop(f"127.0.0.1:{studio_port}") == "open"
    assert set(seen.values()) <= REFUSED, seen


@needs_tools
def test_allowlist_lets_listed_names_out_through_the_proxy_only(network, test_hosts):
    state = network("allowlist", ["pypi.org", "localhost"])
    assert curl(state, "https://pypi.org/simple/six/") == "200"
    # Not listed: the proxy says no. Direct, around the proxy: nftables says no.
    assert curl(state, "https://registry.npmjs.org/left-pad", show="%{http_connect}") == "403"
    assert curl(state, "https://pypi.org/simple/six/", "--noproxy", "*") == "000"
    assert probe(state, f"{OPEN_HOST}:{PORT}")[f"{OPEN_HOST}:{PORT}"] in REFUSED
    assert curl(state, f"http://{OPEN_HOST}:{PORT}/") == "403"
    # Listed, but resolving to a blocked address (loopback here): refused all the same.
    assert curl(state, "http://localhost:5432/", "--noproxy", "") == "403"


@needs_tools
def test_a_sandbox_uid_cannot_change_the_rules(network, test_hosts):
    state = network("none")
    done = run_inside(state, "/usr/sbin/nft", "flush", "ruleset")
    assert done.returncode != 0
    assert probe(state, f"{OPEN_HOST}:{PORT}")[f"{OPEN_HOST}:{PORT}"] in REFUSED


@needs_tools
def test_stop_leaves_no_namespace_and_no_helper_process(tmp_path):
    state_path = tmp_path / "net.json"
    state = local_net.start(
        name=f"as-test-{os.getpid()}-stop",
        policy="allowlist",
        allowlist=["pypi.org"],
        runtime_port=local_net.free_port(),
        state_path=state_path,
        log_path=tmp_path / "net.log",
    )
    pids = [state["proxy"][0], state["pasta"][0], state["holder"][0], state["egress"]["pasta"][0]]
    assert all(proc_start_time(pid) for pid in pids)
    local_net.stop(state_path)
    assert [pid for pid in pids if proc_start_time(pid)] == []  # (a zombie is not alive)
    assert not Path(f"/run/netns/{state['netns']}").exists()
    assert not Path(f"/run/netns/{state['egress']['netns']}").exists()
    local_net.stop(state_path)  # idempotent


@needs_tools
def test_a_failed_start_leaves_nothing_behind(tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    name = f"as-test-{os.getpid()}-fail"
    try:
        with pytest.raises(BackendError):
            local_net.start(
                name=name,
                policy="open",
                runtime_port=taken.getsockname()[1],  # pasta cannot bind it
                state_path=tmp_path / "net.json",
                log_path=tmp_path / "net.log",
            )
    finally:
        taken.close()
    assert not Path(f"/run/netns/{name}").exists()
    assert not (tmp_path / "net.json").exists()
