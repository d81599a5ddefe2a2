"""One price table: model ids find their family; overrides apply; bad overrides stop startup."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.pricing import (
    DEFAULT_PRICE,
    TIER_3_15,
    TIER_5_25,
    TIER_15_75,
    Usage,
    cost_usd,
    family,
    price_for,
    price_table,
)
from studio.env import ConfigError


@pytest.mark.parametrize(
    ("model", "price"),
    [
        ("claude-sonnet-4-5-20250929", TIER_3_15),
        ("claude-sonnet-4-5", TIER_3_15),
        ("claude-opus-4-20250514", TIER_15_75),
        ("claude-opus-4-1-20250805", TIER_15_75),
        ("claude-opus-4-5-20251101", TIER_5_25),
        ("claude-3-5-haiku-latest", price_for("claude-3-5-haiku")),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", TIER_3_15),
        ("claude-opus-4-5@20251101", TIER_5_25),
        ("claude-sonnet-4-5[1m]", TIER_3_15),
    ],
)
def test_model_ids_take_their_familys_price(model, price):
    assert price_for(model) == price


def test_an_unknown_model_takes_the_default_price():
    assert family("gpt-4o") is None
    assert price_for("gpt-4o") == DEFAULT_PRICE


def test_cost_applies_each_rate_to_its_tokens():
    usage = Usage(
        input_tokens=1_000_000,
        output_tokens=2_000_000,
        cache_write_tokens=3_000_000,
        cache_write_1h_tokens=1_000_000,
        cache_read_tokens=4_000_000,
    )
    # 3 + 2 x 15 + 2 x 3.75 + 1 x 6 + 4 x 0.3
    assert cost_usd("claude-sonnet-4-5", usage) == Decimal("47.700000")
    assert cost_usd("claude-sonnet-4-5", Usage(output_tokens=1)) == Decimal("0.000015")


def test_overrides_replace_a_family_and_add_new_ones(settings):
    settings.MODEL_PRICES = {
        "claude-sonnet-4-5": {"input": 7, "output": 11},
        "acme-model": {"input": 1, "output": 2, "cache_write": 3, "cache_read": 4},
        "default": {"input": 100, "output": 100},
    }
    assert price_for("claude-sonnet-4-5-20250929").input == 7
    assert price_for("claude-sonnet-4-5-20250929").cache_read == TIER_3_15.cache_read
    assert price_for("acme-model-2").cache_write_1h == Decimal("4.8")
    assert price_for("never-heard-of-it").output == 100


@pytest.mark.parametrize(
    "entry",
    [
        {"input": -1},
        {"input": "NaN"},
        {"input": True},
        {"inputs": 3},
        {},
        "cheap",
    ],
)
def test_it_refuses_malformed_overrides_naming_the_entry(settings, entry):
    settings.MODEL_PRICES = {"claude-x": entry}
    with pytest.raises(ConfigError, match="claude-x"):
        price_table()
