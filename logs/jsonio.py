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

Nesting is bounded before anything else sees the value: ``loads`` refuses a document nested
deeper than ``MAX_DEPTH`` (``TooDeep``, a ValueError naming the limit), so nothing downstream
(the redactor, the database's JSON encoder, the API's renderer, the admin) meets a structure
deep enough to exhaust the stack. orjson parses without recursing in Python and refuses more
than 1,024 levels itself; its result is measured by orjson too (``_fits``: one C-speed pass,
about a quarter of the parse). A body that goes to ``json`` is measured from its bytes first
(``nesting_depth``), since ``json``'s parser recurses.
"""

from __future__ import annotations

import io
import json
import math
from itertools import accumulate
from typing import Any

import orjson
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

_DIGITS = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))  # "0"-"9" to "0", all else " "
_SHORTEST_INEXACT_RUN = b"0" * 20
# Deep enough for any message the SDK sends (a line's data sits 3 levels down), shallow
# enough that every recursive reader downstream has stack to spare.
MAX_DEPTH = 64
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_DEPTH_STEP = [0] * 256
for _open, _close in zip(b"[{", b"]}", strict=True):
    _DEPTH_STEP[_open], _DEPTH_STEP[_close] = 1, -1


class TooDeep(ValueError):
    def __init__(self, limit: int):
        super().__init__(f"JSON nested deeper than {limit} levels (the limit).")
        self.limit = limit


def nesting_depth(body: bytes) -> int:
    """How deeply the JSON document ``body`` nests arrays and objects, read from its bytes
    without parsing it. Exact for valid JSON (for anything else, some number: the parser
    refuses it next). Escaped backslashes and quotes are dropped, then everything but quotes
    and brackets; strings are then the spans between quotes, most of them empty."""
    body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = body.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in skeleton:  # brackets inside strings: keep only what lies between them
        skeleton = b"".join(skeleton.split(b'"')[::2])
    return max(accumulate(map(_DEPTH_STEP.__getitem__, skeleton)), default=0)


def check_depth(body: bytes, limit: int = MAX_DEPTH) -> None:
    """TooDeep (a ValueError naming the limit) if ``body`` nests deeper than ``limit``."""
    if body.count(b"[") + body.count(b"{") > limit and nesting_depth(body) > limit:
        raise TooDeep(limit)


def _nested(value: Any, levels: int) -> Any:
    for _ in range(levels):
        value = [value]
    return value


def _dumps_depth_limit() -> int:
    """The deepest value orjson writes (254 in orjson 3.x), measured, not assumed."""
    low, high = 1, 4096
    while low < high:
        mid = (low + high + 1) // 2
        try:
            orjson.dumps(_nested(0, mid))
            low = mid
        except orjson.JSONEncodeError:
            high = mid - 1
    return low


_DUMPS_DEPTH_LIMIT = _dumps_depth_limit()


def _fits(value: Any, limit: int) -> bool:
    """Whether ``value`` (as orjson parsed it) nests at most ``limit`` deep: wrapped in
    enough lists that only such a value stays within what orjson writes."""
    if limit >= _DUMPS_DEPTH_LIMIT:
        return True  # nothing orjson parsed that deep reaches Python's recursion limits
    try:
        orjson.dumps(_nested(value, _DUMPS_DEPTH_LIMIT - limit))
    except orjson.JSONEncodeError:
        return False
    return True


def loads(body: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """The body's value; ValueError (with json's message) if it is not JSON that orjson and
    json read the same way or json can read at all, TooDeep if it nests deeper than
    ``max_depth``."""
    if _SHORTEST_INEXACT_RUN not in body.translate(_DIGITS):
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
        else:
            if not _fits(value, max_depth):
                raise TooDeep(max_depth)
            return value
    check_depth(body, max_depth)  # before json's parser, which recurses
    value = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
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


def loads_allowing_non_finite(body: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json``'s reading of a body ``loads`` refused as NotFinite, NaN and infinities kept as
    floats: only so that a validator can name the field that holds one. Never store it."""
    check_depth(body, max_depth)
    return json.loads(body)


class NotFinite(ValueError):
    """NaN, Infinity, or a number too large for a double: JSON that no column can hold."""


def _refuse_constant(name: str):
    raise NotFinite(f"{name} is not valid JSON.")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NotFinite(f"{text[:40]} is out of range for a number.")
    return value


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser for every API route, refusing nesting deeper than MAX_DEPTH first:
    the standard library's parser recurses, so a deep enough body was a RecursionError (a
    500); now it is a 400 naming the limit, before any parsing."""

    def parse(self, stream, media_type=None, parser_context=None):
        body = stream.read()
        try:
            check_depth(body)
        except TooDeep as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        return super().parse(io.BytesIO(body), media_type, parser_context)


class IngestJSONParser(JSONParser):
    """DRF's JSON parser, read through ``loads``."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return loads(stream.read())
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
