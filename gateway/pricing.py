"""The one price table: USD per million tokens, per model family. Every cost figure the
studio shows or enforces is computed here from the upstream's reported usage.

The figures are Anthropic's list prices as the bundled Claude Code CLI (claude-agent-sdk
0.2.184) carries them in its model catalog. `MODEL_PRICES` (a JSON object in the environment)
overrides or adds families; its "default" entry prices models the table does not know.
Not modelled: long-context surcharges, the fast service tier, server tools (web search) and
batch discounts (docs/pricing.md).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.conf import settings

from studio.env import ConfigError

log = logging.getLogger(__name__)

MICRO = Decimal("0.000001")
MILLION = Decimal(1_000_000)
FIELDS = ("input", "output", "cache_write", "cache_write_1h", "cache_read")


@dataclass(frozen=True)
class Price:
    """USD per million tokens. `cache_write` is the 5-minute cache; `cache_write_1h` the
    one-hour cache."""

    input: Decimal
    output: Decimal
    cache_write: Decimal
    cache_write_1h: Decimal
    cache_read: Decimal


@dataclass(frozen=True)
class Usage:
    """Token counts as the Messages API reports them. `cache_write_tokens` is
    cache_creation_input_tokens; `cache_write_1h_tokens` the part of it written to the
    one-hour cache (from the `cache_creation` breakdown, when the upstream gives one)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cache_read_tokens: int = 0


def _price(i, o, cw, cw1h, cr) -> Price:
    return Price(*(Decimal(str(x)) for x in (i, o, cw, cw1h, cr)))


TIER_2_10 = _price(2, 10, 2.5, 4, 0.2)
TIER_3_15 = _price(3, 15, 3.75, 6, 0.3)
TIER_5_25 = _price(5, 25, 6.25, 10, 0.5)
TIER_15_75 = _price(15, 75, 18.75, 30, 1.5)

# Keys are model ids without their date suffix; a model matches the longest key that it
# equals or that is followed by "-" in it (claude-sonnet-4-5-20250929 → claude-sonnet-4-5).
PRICES: dict[str, Price] = {
    "claude-3-haiku": _price(0.25, 1.25, 0.3, 0.5, 0.03),
    "claude-3-5-haiku": _price(0.8, 4, 1, 1.6, 0.08),
    "claude-haiku-4-5": _price(1, 5, 1.25, 2, 0.1),
    "claude-haiku-5-5": _price(0.1, 0.5, 0.125, 0.2, 0.01),
    "claude-3-sonnet": TIER_3_15,
    "claude-3-5-sonnet": TIER_3_15,
    "claude-3-7-sonnet": TIER_3_15,
    "claude-sonnet-4": TIER_3_15,
    "claude-sonnet-4-5": TIER_3_15,
    "claude-sonnet-4-6": TIER_3_15,
    "claude-sonnet-5": TIER_2_10,
    "claude-sonnet-5-5": _price(2, 10, 2.5, 4, 0.1),
    "claude-3-opus": TIER_15_75,
    "claude-opus-4": TIER_15_75,
    "claude-opus-4-1": TIER_15_75,
    "claude-opus-4-5": TIER_5_25,
    "claude-opus-4-6": TIER_5_25,
    "claude-opus-4-7": TIER_5_25,
    "claude-opus-4-8": TIER_5_25,
    "claude-opus-5": TIER_5_25,
    "claude-opus-5-5": _price(4, 20, 5, 8, 0.2),
    "claude-fable-5": _price(10, 50, 12.5, 20, 1),
    "claude-fable-5-1": _price(10, 50, 12.5, 20, 0.25),
    "claude-fable-5-2": _price(8, 40, 10, 16, 0.2),
    "claude-mythos-5": _price(10, 50, 12.5, 20, 1),
    "claude-mythos-5-1": _price(10, 50, 12.5, 20, 0.25),
    "claude-mythos-5-2": _price(8, 40, 10, 16, 0.2),
}
# What the CLI itself assumes for a model it does not know.
DEFAULT_PRICE = TIER_5_25

_DATE_SUFFIX = re.compile(r"-(\d{8}|latest)$")
_warned: set[str] = set()


def price_table() -> tuple[dict[str, Price], Price]:
    """The table with MODEL_PRICES applied, and the price for unknown models. Raises
    ConfigError naming the entry when an override is malformed (checked at startup)."""
    table, default = dict(PRICES), DEFAULT_PRICE
    for name, entry in (settings.MODEL_PRICES or {}).items():
        price = _override(name, entry, table.get(name, DEFAULT_PRICE))
        if name == "default":
            default = price
        else:
            table[name.lower()] = price
    return table, default


def _override(name: str, entry, base: Price) -> Price:
    if not isinstance(entry, dict) or set(entry) - set(FIELDS) or not entry:
        raise ConfigError(
            f"MODEL_PRICES[{name!r}] must be an object with some of {', '.join(FIELDS)} "
            "(USD per million tokens)."
        )
    values = {}
    for field in FIELDS:
        raw = entry.get(field, getattr(base, field))
        try:
            value = Decimal(str(raw))
        except InvalidOperation:
            value = Decimal(-1)
        if isinstance(raw, bool) or not value.is_finite() or value < 0:
            raise ConfigError(f"MODEL_PRICES[{name!r}][{field!r}] must be a number >= 0.")
        values[field] = value
    if "cache_write" in entry and "cache_write_1h" not in entry:
        values["cache_write_1h"] = values["cache_write"] * Decimal("1.6")
    return Price(**values)


def family(model: str) -> str | None:
    """The table key that prices `model`, or None when it is unknown."""
    table, _ = price_table()
    return _family(model, table)


def _family(model: str, table: dict[str, Price]) -> str | None:
    name = (model or "").lower().split("[", 1)[0].split("@", 1)[0]
    name = name.rsplit(".", 1)[-1]  # a Bedrock id: us.anthropic.claude-…
    name = _DATE_SUFFIX.sub("", name)
    best = None
    for key in table:
        if (name == key or name.startswith(key + "-")) and (best is None or len(key) > len(best)):
            best = key
    return best


def price_for(model: str) -> Price:
    """The price of a model by its id (the default price when the table does not know it)."""
    table, default = price_table()
    key = _family(model, table)
    if key is None:
        if model not in _warned:
            _warned.add(model)
            log.warning("no price for model=%r; using the default price", model)
        return default
    return table[key]


def cost_usd(model: str, usage: Usage) -> Decimal:
    """What a call cost in USD, to the micro-dollar (each call is rounded once; a session's
    cost is the sum of its calls)."""
    price = price_for(model)
    cache_5m = max(0, usage.cache_write_tokens - usage.cache_write_1h_tokens)
    cache_1h = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
    total = (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + cache_5m * price.cache_write
        + cache_1h * price.cache_write_1h
        + usage.cache_read_tokens * price.cache_read
    ) / MILLION
    return total.quantize(MICRO, rounding=ROUND_HALF_UP)
