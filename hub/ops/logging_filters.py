"""Keep credentials out of every log line (PROTOCOL.md §2: tokens never appear in logs).

Two passes over the text:

1. **Query-string pairs** (after ``?``, ``&`` or ``;``): each key is decoded as a server
   would read it (percent-encoding, repeatedly; ``+`` as a space; case; surrounding space;
   a ``[]`` suffix) before it is compared with SECRET_KEYS, so ``?tok%65n=SECRET``,
   ``?TOKEN=SECRET`` and ``?token[]=SECRET`` are all redacted, each repeated key on its own.
2. ``key=value`` words anywhere (``password=... user=...``, cookies) and
   ``Bearer``/``Token`` credentials.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

SECRET_KEYS = frozenset({
    "token", "access", "access_token", "refresh", "refresh_token", "id_token", "jwt", "auth",
    "authorization", "password", "passwd", "pwd", "secret", "client_secret", "api_key", "apikey",
    "key", "sessionid", "csrftoken", "csrfmiddlewaretoken",
})
REDACTED = "[redacted]"

_PAIR_RE = re.compile(r"(?<=[?&;])([^=&;\s\"'?#]+)=([^&;\s\"'#]*)")
_SECRET_RE = re.compile(
    r"(?i)((?:[?&;]|\b)(?:token|access|refresh|password|sessionid|csrftoken)=)[^&\s\"';]+"
    r"|(\bBearer\s+)[A-Za-z0-9._\-+/=]+"
    r"|(\bToken\s+)[A-Za-z0-9._\-+/=]+"
)


def decoded_key(raw: str) -> str:
    """A query key as the server reads it, case-folded: ``tok%65n`` -> ``token``."""
    key = raw
    for _ in range(3):  # %2565 -> %65 -> e: a double-encoded key is decoded too
        decoded = unquote_plus(key, errors="replace")
        if decoded == key:
            break
        key = decoded
    key = key.strip().casefold()
    return key[:-2] if key.endswith("[]") else key


def _pair(match: re.Match) -> str:
    key, value = match.group(1), match.group(2)
    if value and decoded_key(key) in SECRET_KEYS:
        return f"{key}={REDACTED}"
    return match.group(0)


def redact(text: str) -> str:
    """Replace credential values in ``text`` with ``[redacted]``."""
    text = _PAIR_RE.sub(_pair, text)
    return _SECRET_RE.sub(lambda m: (m.group(1) or m.group(2) or m.group(3)) + REDACTED, text)


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class RedactingStream:
    """Wraps daphne's access-log stream: daphne prints HTTP query strings verbatim."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(redact(text))

    def flush(self) -> None:
        self._stream.flush()
