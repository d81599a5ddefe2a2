# Vendored from https://github.com/e2b-dev/E2B packages/python-sdk/tests/sync/sandbox_sync/files/test_make_dir.py
# at commit b8029973aa7d (python-sdk 2.45.1). Copyright (c) 2025 FOUNDRYLABS, INC.
# MIT License (see LICENSE beside this directory's README). Unchanged below this header.
import uuid

from e2b import Sandbox


def test_make_directory(sandbox: Sandbox):
    dir_name = f"test_directory_{uuid.uuid4()}"

    sandbox.files.make_dir(dir_name)
    exists = sandbox.files.exists(dir_name)
    assert exists


async def test_make_directory_already_exists(sandbox: Sandbox):
    dir_name = f"test_directory_{uuid.uuid4()}"

    created = sandbox.files.make_dir(dir_name)
    assert created

    created = sandbox.files.make_dir(dir_name)
    assert not created


def test_make_nested_directory(sandbox: Sandbox):
    nested_dir_name = f"test_directory_{uuid.uuid4()}/nested_directory"

    sandbox.files.make_dir(nested_dir_name)
    exists = sandbox.files.exists(nested_dir_name)
    assert exists
