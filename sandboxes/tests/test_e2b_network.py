"""The agent's network policy on E2B: what the backend asks E2B's own egress controls for,
and that the real SDK carries it in its create request (observed at the local double)."""

from __future__ import annotations

import uuid

import pytest

from sandboxes.backends.base import CreateSpec
from sandboxes.backends.e2b import network_options
from sandboxes.tests.conftest import E2B_INSTALL_ID

STUDIO = ("https://studio.example.com", "https://api.anthropic.com")


def spec(**fields) -> CreateSpec:
    return CreateSpec(sandbox_id=str(uuid.uuid4()), agent_id="a", runtime_token="t", **fields)


def test_open_denies_the_ranges_a_local_sandbox_never_reaches():
    options = network_options(spec(), STUDIO)
    denied = options["network"]["deny_out"]
    assert "allow_out" not in options["network"]
    for net in ("10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16"):
        assert net in denied
    assert all(":" not in n for n in denied)  # E2B's rules are IPv4 CIDRs


def test_allowlist_allows_the_listed_domains_and_the_studio_and_denies_the_rest():
    options = network_options(
        spec(network_policy="allowlist", network_allowlist=("pypi.org", "*.pythonhosted.org")),
        STUDIO,
    )
    assert options == {
        "network": {
            "allow_out": [
                "pypi.org",
                "*.pythonhosted.org",
                "studio.example.com",
                "api.anthropic.com",
            ],
            "deny_out": ["0.0.0.0/0"],
        }
    }


def test_none_allows_the_studio_only():
    options = network_options(spec(network_policy="none", network_allowlist=("pypi.org",)), STUDIO)
    assert options["network"]["allow_out"] == ["studio.example.com", "api.anthropic.com"]
    assert options["network"]["deny_out"] == ["0.0.0.0/0"]
    assert network_options(spec(network_policy="none"), ()) == {"allow_internet_access": False}


@pytest.mark.parametrize("policy", ["open", "allowlist", "none"])
def test_the_sdk_sends_the_policy_with_the_create_request(e2b_double, monkeypatch, policy):
    from sandboxes.backends.e2b import E2BBackend
    from sandboxes.backends.e2b_double.control_plane import ControlPlane

    seen = []
    create = ControlPlane.create

    async def recording(self, send, payload):
        seen.append(payload)
        return await create(self, send, payload)

    monkeypatch.setattr(ControlPlane, "create", recording)
    backend = E2BBackend(
        **e2b_double.backend_options(),
        template_id="bare",
        install_id=E2B_INSTALL_ID,
        studio_urls=lambda: STUDIO,
    )
    handle = backend.create(
        spec(network_policy=policy, network_allowlist=("pypi.org",), timeout_seconds=60)
    )
    try:
        body = seen[-1]
        if policy == "open":
            assert "10.0.0.0/8" in body["network"]["denyOut"]
        else:
            assert body["network"]["denyOut"] == ["0.0.0.0/0"]
            assert "studio.example.com" in body["network"]["allowOut"]
            assert ("pypi.org" in body["network"]["allowOut"]) is (policy == "allowlist")
    finally:
        backend.kill(handle.external_id)
