# Vendored from https://github.com/e2b-dev/E2B packages/python-sdk/tests/sync/api_sync/test_sbx_info.py
# at commit b8029973aa7d (python-sdk 2.45.1). Copyright (c) 2025 FOUNDRYLABS, INC.
# MIT License (see LICENSE beside this directory's README). Unchanged below this header.
import pytest

from e2b import Sandbox


@pytest.mark.skip_debug()
def test_get_info(sandbox: Sandbox):
    info = Sandbox.get_info(sandbox.sandbox_id)
    assert info.sandbox_id == sandbox.sandbox_id
