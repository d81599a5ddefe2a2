"""Fixtures for the sandbox backends. Each block is self-contained; add yours beside it."""

from __future__ import annotations

import importlib.util

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
