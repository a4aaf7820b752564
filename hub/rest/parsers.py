"""The JSON parser of every REST view: DRF's, plus two refusals answered as 400 JSON before
any view sees the body (PROTOCOL.md section 6: bad input is 400 naming the field).

- **Nesting deeper than MAX_DEPTH** (64) arrays/objects: ``parse_error``. Checked on the raw
  text before decoding, so a 100,000-deep body costs one regular-expression pass, never a
  RecursionError (which was a 500).
- **Lone surrogates** (``"\\ud800"``, legal JSON escapes but not Unicode text) in any key or
  string value: ``invalid`` with ``fields`` naming the dotted path (``data.note``). Such a
  string cannot be encoded as UTF-8: stored, it broke every later answer that contained it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings
from rest_framework import exceptions
from rest_framework.parsers import JSONParser

MAX_DEPTH = 64
# a JSON string, "unrolled" (runs of plain characters, then one escape): ~3x faster than
# one alternation per character on a long body
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_INNERMOST = re.compile(r"\[\]|\{\}")
_SURROGATE = re.compile("[\ud800-\udfff]")


class BadInput(exceptions.ValidationError):
    """A 400 for one dotted field path (hub.rest.apis_errors shapes it)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__({field: [message]}, code="invalid")


def nesting_depth(text: str) -> int:
    """The deepest array/object nesting of JSON ``text`` (brackets inside strings ignored)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub("", text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def deeper_than(text: str, limit: int) -> bool:
    """Whether JSON ``text`` nests arrays/objects deeper than ``limit`` (brackets inside
    strings ignored), in C-speed passes: each pass removes the innermost ``[]``/``{}`` pairs
    (one level), so valid JSON of depth d is empty after d passes. Unbalanced brackets (not
    JSON) count as too deep: the caller lets the full parser answer. Same verdict as
    ``nesting_depth(text) > limit`` for JSON text, at a fraction of its cost for a long
    list body (no Python step per bracket)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    for _level in range(limit):
        if not brackets:
            return False
        shorter = _INNERMOST.sub("", brackets)
        if len(shorter) == len(brackets):
            return True
        brackets = shorter
    return bool(brackets)


def _printable(key: str) -> str:
    return key.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")


def find_surrogate(value: Any, path: str = "") -> str | None:
    """The dotted path of the first key or string holding a lone surrogate, else None.
    Recursion is bounded: the body was checked for depth first."""
    if isinstance(value, str):
        return (path or "non_field_errors") if _SURROGATE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{_printable(key)}" if path else _printable(key)
            if _SURROGATE.search(key):
                return here
            found = find_surrogate(item, here)
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = find_surrogate(item, f"{path}[{index}]")
            if found:
                return found
    return None


class HubJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        raw = stream.read() if stream is not None else b""
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise exceptions.ParseError(f"JSON parse error - body is not {encoding} text: {exc.reason}"
                                        if isinstance(exc, UnicodeDecodeError) else "unknown charset")
        if nesting_depth(text) > MAX_DEPTH:
            raise exceptions.ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels")
        try:
            data = json.loads(text, parse_constant=_refuse_constant)
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        where = find_surrogate(data)
        if where is not None:
            raise BadInput(where, "contains a lone surrogate (e.g. \\ud800): not valid Unicode text")
        return data


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
