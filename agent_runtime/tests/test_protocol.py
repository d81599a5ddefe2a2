"""The execute body's options: notices from the studio."""

from __future__ import annotations

import pytest

from agent_runtime.protocol import ValidationError, validate_execute


def body(**options):
    return {
        "session_id": "s1",
        "prompt": "hi",
        "options": options,
        "ingest": {"url": "http://127.0.0.1:1/append", "token": "t"},
    }


def test_notices_default_to_none_and_keep_their_order():
    assert validate_execute(body())["options"]["notices"] == []
    assert validate_execute(body(notices=["a", "b"]))["options"]["notices"] == ["a", "b"]


@pytest.mark.parametrize("bad", ["one string", [1], [""], {"a": 1}])
def test_it_refuses_notices_that_are_not_a_list_of_strings(bad):
    with pytest.raises(ValidationError) as caught:
        validate_execute(body(notices=bad))
    assert caught.value.field == "options.notices"
