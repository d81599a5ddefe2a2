# Vendored from https://github.com/e2b-dev/E2B packages/python-sdk/tests/sync/sandbox_sync/files/test_exists.py
# at commit b8029973aa7d (python-sdk 2.45.1). Copyright (c) 2025 FOUNDRYLABS, INC.
# MIT License (see LICENSE beside this directory's README). Unchanged below this header.
from e2b import Sandbox


def test_exists(sandbox: Sandbox):
    filename = "test_exists.txt"

    sandbox.files.write(filename, "test")
    assert sandbox.files.exists(filename)
