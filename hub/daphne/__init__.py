"""The daphne seam: the only code in the project that imports daphne, autobahn or Twisted.

- ``writer``: ``DaphneWriter`` (publications framed once per process with autobahn's
  ``prepareMessage``, written straight to the socket, slow consumers found from Twisted's
  queued bytes) and ``stock_send`` (what the fallback needs from daphne: close codes).
- ``server``: ``python -m hub.server`` (daphne's CLI, lighter per-socket protocol, access-log
  redaction, frame-size closes).
- ``light``: what an open socket's autobahn protocol no longer needs (used by ``server``).
- ``checks``: ONE table of the internals these rely on, checked at start-up.

``fast_path()`` decides once per process: ``HUB_DAPHNE_FAST_PATH=off`` forces the fallback;
otherwise the checks run and, if any row is missing (an upgrade), ONE warning names them and
the process uses the stock ASGI path (``hub.engine.transport.AsgiWriter`` and daphne's own server
classes, no monkeypatch): still correct, slower. Importing this package imports none of
daphne, autobahn or Twisted; ``fast_path()`` (through ``checks.missing``) and ``server`` do.
"""

from __future__ import annotations

import logging
import os

from hub.daphne import checks

logger = logging.getLogger("hub.daphne")

ENV = "HUB_DAPHNE_FAST_PATH"
_OFF = frozenset({"off", "0", "false", "no"})

_decided: bool | None = None
_missing: list[str] = []


def forced_off() -> bool:
    return os.environ.get(ENV, "on").strip().lower() in _OFF


def fast_path() -> bool:
    """True when the fast path may be used in this process (decided on the first call)."""
    global _decided, _missing
    if _decided is None:
        if forced_off():
            _missing = []
            _decided = False
            logger.info("daphne fast path off (%s=off): stock ASGI writes", ENV)
        else:
            _missing = checks.missing()
            _decided = not _missing
            if _missing:
                logger.warning(
                    "daphne fast path disabled, falling back to stock ASGI writes (correct, "
                    "slower): this daphne/autobahn/Twisted lacks %s", ", ".join(_missing))
    return _decided


def missing() -> list[str]:
    """What the last decision found missing (empty when forced off or all present)."""
    return list(_missing)


def reset() -> None:
    """Forget the decision (tests: decide again after changing the environment)."""
    global _decided, _missing
    _decided, _missing = None, []
