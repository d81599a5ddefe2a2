# Vendored from https://github.com/e2b-dev/E2B packages/python-sdk/tests/sync/sandbox_sync/test_timeout.py
# at commit b8029973aa7d (python-sdk 2.45.1). Copyright (c) 2025 FOUNDRYLABS, INC.
# MIT License (see LICENSE beside this directory's README). Unchanged below this header.
from time import sleep
from datetime import datetime

import pytest


@pytest.mark.skip_debug()
def test_shorten_timeout(sandbox):
    sandbox.set_timeout(5)
    sleep(6)

    is_running = sandbox.is_running(request_timeout=5)
    assert is_running is False


@pytest.mark.skip_debug()
def test_shorten_then_lengthen_timeout(sandbox):
    sandbox.set_timeout(5)
    sleep(1)
    sandbox.set_timeout(10)
    sleep(6)
    sandbox.is_running()


@pytest.mark.skip_debug()
def test_get_timeout(sandbox):
    info = sandbox.get_info()
    assert isinstance(info.end_at, datetime)
