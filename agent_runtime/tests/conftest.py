"""Fixtures: the real runtime server (subprocess), the scripted model, a stand-in ingest.

No Django here: the runtime is a separate program; its tests also run with ``-p no:django``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_runtime.scripted_model import ScriptedModel
from agent_runtime.tests.helpers import Receiver, RuntimeProcess


@pytest.fixture
def model() -> Iterator[ScriptedModel]:
    scripted = ScriptedModel()
    scripted.start()
    yield scripted
    scripted.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def runtime(tmp_path: Path, model: ScriptedModel) -> Iterator[RuntimeProcess]:
    rt = RuntimeProcess(tmp_path, model.base_url).start()
    yield rt
    rt.stop()
    rt.kill_leftovers()
