"""The meter reads the upstream's usage from the bytes as they pass, however they are cut."""

from __future__ import annotations

import json
import random

from gateway.meter import UsageMeter
from gateway.pricing import Usage


def sse(*events: dict) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


START = {
    "type": "message_start",
    "message": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [],
        "usage": {
            "input_tokens": 12,
            "cache_creation_input_tokens": 200,
            "cache_read_input_tokens": 3000,
            "cache_creation": {"ephemeral_5m_input_tokens": 150, "ephemeral_1h_input_tokens": 50},
            "output_tokens": 1,
        },
    },
}
BIG_TEXT = "x" * 300_000
BODY = sse(
    START,
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": BIG_TEXT}},
    {"type": "content_block_stop", "index": 0},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn"},
        "usage": {"output_tokens": 777},
    },
    {"type": "message_stop"},
)
EXPECTED = Usage(
    input_tokens=12,
    output_tokens=777,
    cache_write_tokens=200,
    cache_write_1h_tokens=50,
    cache_read_tokens=3000,
)


def metered(chunks) -> UsageMeter:
    meter = UsageMeter("text/event-stream; charset=utf-8")
    for chunk in chunks:
        meter.feed(chunk)
    meter.finish()
    return meter


def test_it_reads_usage_from_a_stream_in_one_piece():
    meter = metered([BODY])
    assert meter.usage == EXPECTED
    assert meter.model == "claude-sonnet-4-5-20250929"


def test_it_reads_usage_from_a_stream_cut_anywhere():
    rng = random.Random(7)
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(BODY)), 40))
        chunks = [BODY[a:b] for a, b in zip([0, *cuts], [*cuts, len(BODY)], strict=True)]
        assert metered(chunks).usage == EXPECTED


def test_it_reads_usage_from_a_stream_fed_byte_by_byte():
    small = BODY.replace(BIG_TEXT.encode(), b"hello")
    assert metered([small[i : i + 1] for i in range(len(small))]).usage == EXPECTED


def test_it_keeps_no_content_line_while_it_passes():
    meter = UsageMeter("text/event-stream")
    head = BODY[: BODY.index(BIG_TEXT.encode()) + 1000]
    meter.feed(head)
    assert len(meter._line) < 100  # the 300 kB content line is skipped, not held


def test_cumulative_counts_in_message_delta_replace_the_start_counts():
    body = sse(
        START,
        {
            "type": "message_delta",
            "delta": {},
            "usage": {"input_tokens": 40, "cache_read_input_tokens": 3100, "output_tokens": 9},
        },
    )
    usage = metered([body]).usage
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (40, 3100, 9)
    assert usage.cache_write_tokens == 200


def test_it_reads_a_json_answer():
    message = {**START["message"], "usage": {"input_tokens": 5, "output_tokens": 6}}
    meter = UsageMeter("application/json")
    raw = json.dumps(message).encode()
    meter.feed(raw[:10])
    meter.feed(raw[10:])
    meter.finish()
    assert meter.usage == Usage(input_tokens=5, output_tokens=6)
    assert meter.model == "claude-sonnet-4-5-20250929"


def test_an_error_answer_has_no_usage_and_says_why():
    meter = UsageMeter("application/json")
    meter.feed(b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}')
    meter.finish()
    assert meter.usage == Usage()
    assert meter.error == "Overloaded"


def test_hostile_counts_are_ignored():
    body = sse(
        {
            "type": "message_start",
            "message": {
                "type": "message",
                "model": "m",
                "usage": {
                    "input_tokens": -5,
                    "output_tokens": True,
                    "cache_read_input_tokens": 1e30,
                },
            },
        }
    )
    assert metered([body]).usage == Usage()
