"""Fixtures for the sandbox backends. Each block is self-contained; add yours beside it."""

from __future__ import annotations

import importlib.util
import os

import pytest

# --- E2B: the real SDK against the local double ---------------------------------------

E2B_INSTALL_ID = "install-test"


def agent_runtime_serves() -> bool:
    """Whether `python -m agent_runtime serve` exists yet (it is being written)."""
    try:
        return importlib.util.find_spec("agent_runtime.__main__") is not None
    except ImportError:
        return False


@pytest.fixture
def e2b_double():
    """A running E2B double. Templates: "agent-runtime" boots the real runtime when it
    exists (else the stand-in), "standin" the stand-in, "bare" nothing."""
    from sandboxes.backends.e2b_double import (
        DoubleTemplate,
        E2BDouble,
        runtime_template,
        standin_template,
    )

    templates = {
        "agent-runtime": runtime_template() if agent_runtime_serves() else standin_template(),
        "standin": standin_template(),
        "bare": DoubleTemplate(),
    }
    with E2BDouble(templates=templates) as double:
        yield double


@pytest.fixture
def e2b_backend(e2b_double):
    """An E2BBackend for this install, talking to `e2b_double`."""
    from sandboxes.backends.e2b import E2BBackend

    return E2BBackend(
        **e2b_double.backend_options(), template_id="agent-runtime", install_id=E2B_INSTALL_ID
    )


# --- The studio's sandbox flow through the API ---------------------------------------------


@pytest.fixture(params=["local", "e2b"])
def backend(request, settings):
    """The backend every sandbox in the test uses."""
    if request.param == "e2b":
        from sandboxes.backends import override_backend
        from sandboxes.backends.e2b import E2BBackend

        double = request.getfixturevalue("e2b_double")
        settings.E2B_API_KEY = double.backend_options()["api_key"]
        settings.E2B_TEMPLATE_ID = "agent-runtime"
        override_backend(
            "e2b",
            E2BBackend(
                **double.backend_options(),
                template_id="agent-runtime",
                install_id=settings.STUDIO_INSTALL_ID,
            ),
        )
        request.addfinalizer(lambda: override_backend("e2b", None))
    settings.SANDBOX_BACKEND = request.param
    return request.param


@pytest.fixture
def local(settings):
    settings.SANDBOX_BACKEND = "local"
    return "local"


CA_VARIABLES = ("NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE")


def host_ca_env() -> dict[str, str]:
    """The host's CA settings, for an agent whose sandbox must reach a package registry.
    This machine reaches registries through a TLS-inspecting proxy; local sandboxes inherit
    these variables, the E2B double's get them only through the agent's env."""
    return {k: v for k, v in os.environ.items() if k in CA_VARIABLES and v.startswith("/etc/")}


def create_agent(api, **fields) -> str:
    res = api.post(
        "/api/agents/",
        {
            "name": "builder",
            "skills": [{"name": "greet", "description": "Say hi: politely", "body": "Say hi."}],
            "secrets": {"DEPLOY_TOKEN": "s3cr3t-deploy-token-value"},
            **fields,
        },
        format="json",
    )
    assert res.status_code == 201, res.content
    return res.json()["id"]


@pytest.fixture
def agent_id(api, backend):
    return create_agent(api)
