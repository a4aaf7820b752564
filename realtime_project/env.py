"""Reading numbers from the environment with errors that name the variable.

Used by the settings module and by the apps' own start-up checks (``hub.ops.stats_recorder``,
``slurm_monitor.conf``), so every variable fails the same way: ``NAME must be ...``.
"""

from __future__ import annotations

import os
from typing import Callable, Mapping, TypeVar, overload

N = TypeVar("N", int, float)


@overload
def env_number(name: str, default: float, minimum: float, *,
               env: Mapping[str, str] | None = None, exclusive: bool = False,
               error: type[Exception] | None = None) -> float: ...


@overload
def env_number(name: str, default: N, minimum: N, *, cast: Callable[[str], N],
               env: Mapping[str, str] | None = None, exclusive: bool = False,
               error: type[Exception] | None = None) -> N: ...


def env_number(name: str, default: float, minimum: float, *, cast: Callable[[str], float] = float,
               env: Mapping[str, str] | None = None, exclusive: bool = False,
               error: type[Exception] | None = None) -> float:
    """``env[name]`` as ``cast`` (default when unset or blank). Raises ``error`` (Django's
    ImproperlyConfigured unless given) naming ``name`` when the value is not a number or is
    below ``minimum`` (or not above it, with ``exclusive``)."""
    if error is None:
        from django.core.exceptions import ImproperlyConfigured

        error = ImproperlyConfigured
    raw = (os.environ if env is None else env).get(name)
    if raw is None or raw.strip() == "":
        return default
    kind = "an integer" if cast is int else "a number"
    try:
        value = cast(raw.strip())
    except ValueError:
        raise error(f"{name} must be {kind}, got {raw!r}") from None
    if value < minimum or (exclusive and value == minimum):
        raise error(f"{name} must be {'>' if exclusive else '>='} {minimum:g}, got {raw.strip()}")
    return value


_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60,
            "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def env_rate(name: str, default: str, env: Mapping[str, str] | None = None) -> tuple[int, int]:
    """A rate such as ``600/min`` as (requests, seconds); ImproperlyConfigured names ``name``."""
    from django.core.exceptions import ImproperlyConfigured

    raw = (os.environ if env is None else env).get(name, "").strip() or default
    count, _, period = raw.partition("/")
    try:
        requests = int(count)
    except ValueError:
        requests = 0
    seconds = _PERIODS.get(period.strip().lower())
    if requests < 1 or seconds is None:
        raise ImproperlyConfigured(
            f"{name} must look like 600/min (periods: s, min, h, day), got {raw!r}")
    return requests, seconds
