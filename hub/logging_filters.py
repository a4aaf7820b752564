"""Keep credentials out of every log line (PROTOCOL.md §2: tokens never appear in logs)."""

from __future__ import annotations

import logging
import re

_SECRET_RE = re.compile(
    r"(?i)((?:[?&;]|\b)(?:token|access|refresh|password|sessionid|csrftoken)=)[^&\s\"';]+"
    r"|(\bBearer\s+)[A-Za-z0-9._\-+/=]+"
    r"|(\bToken\s+)[A-Za-z0-9._\-+/=]+"
)


def redact(text: str) -> str:
    """Replace token values in ``text`` with ``[redacted]``."""
    return _SECRET_RE.sub(lambda m: (m.group(1) or m.group(2) or m.group(3)) + "[redacted]", text)


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
