"""Hub channel names -> Channels group names (pure; tests/hub/test_group_names.py)."""

from __future__ import annotations

import hashlib
import re

ALL_CHANNEL = "all"  # every socket is subscribed to it (hub.publish.broadcast_all)
_MAX_GROUP_NAME = 99
_PLAIN_CHANNEL = re.compile(r"[A-Za-z0-9_.:\-]*")
_GROUP_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-")


def _escape_char(char: str) -> str:
    if char in _GROUP_SAFE:
        return char
    if char == "_":
        return "_u"
    if char == ":":
        return "_c"
    code = ord(char)
    return f"_x{code:04x}" if code <= 0xFFFF else f"_y{code:06x}"


def group_name(prefix: str, channel: str) -> str:
    """Hub channel -> Channels group name, injectively. Group names allow only
    ``A-Za-z0-9_.-`` (< 100 chars); hub names add ``:`` and, in ``user:<username>``, any
    character of a Django username (``@``, ``+``, unicode letters). ``_`` is the escape
    character: ``_u`` for ``_``, ``_c`` for ``:``, ``_xHHHH`` / ``_yHHHHHH`` (fixed-width hex
    code point) for anything else, so the code is prefix-free and decodes one way only. Names
    too long after escaping are hashed under a different prefix, so the two forms never
    collide."""
    if _PLAIN_CHANNEL.fullmatch(channel):  # the common case: two C-speed replaces
        escaped = channel.replace("_", "_u").replace(":", "_c")
    else:
        escaped = "".join(map(_escape_char, channel))
    name = f"{prefix}.c.{escaped}"
    if len(name) <= _MAX_GROUP_NAME:
        return name
    return f"{prefix}.h.{hashlib.sha256(channel.encode()).hexdigest()}"
