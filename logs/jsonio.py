"""JSON on the ingest path: orjson where it is exact, the standard library where it is not.

A 300-line append reads one body and writes each line's data and one WebSocket frame;
orjson does that several times faster than ``json``. Where the two differ, ``json`` is used:

- orjson reads an integer beyond 64 bits as a float; a body holding a run of 20 digits (the
  shortest such integer) is read by ``json``, which keeps it exact;
- orjson reads neither NaN/Infinity (nor does the API: DRF's strict JSON refuses them) nor an
  unpaired UTF-16 surrogate; such a body goes to ``json`` and is refused there, by name;
- orjson writes neither integers beyond 64 bits nor surrogates: ``json`` writes those,
  without escaping non-ASCII, so every string is escaped as orjson escapes it (the
  redaction check looks for secrets in that escaping).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

_DIGITS = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))  # "0"-"9" to "0", all else " "
_SHORTEST_INEXACT_RUN = b"0" * 20


def loads(body: bytes) -> Any:
    """The body's value; ValueError (with json's message) if it is not JSON that orjson and
    json read the same way or json can read at all."""
    if _SHORTEST_INEXACT_RUN not in body.translate(_DIGITS):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    value = json.loads(body, parse_constant=_refuse_constant)
    try:
        dumps(value).encode()
    except UnicodeEncodeError:
        raise ValueError("A string holds an unpaired UTF-16 surrogate.") from None
    return value


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # an integer beyond 64 bits, a surrogate
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON.")


class IngestJSONParser(JSONParser):
    """DRF's JSON parser, read through ``loads``."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return loads(stream.read())
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
