"""Who may call what over REST (PROTOCOL.md section 6), and the REST rate limit.

- ``CanBroadcast``: the ``hub.broadcast`` model permission (superusers have every permission).
- staff endpoints use DRF's ``IsAdminUser`` (``is_staff``).
- ``HubApiThrottle``: HUB_API_RATE_LIMIT requests per user (per IP when anonymous), e.g.
  ``600/min`` (default) or ``20/s``; read at use, validated with an error naming the variable.
  Counted in Django's cache: per process with the default local-memory cache.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured
from rest_framework.permissions import BasePermission
from rest_framework.throttling import SimpleRateThrottle

BROADCAST_PERMISSION = "hub.broadcast"
RATE_LIMIT_DEFAULT = "600/min"
_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60,
            "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


class CanBroadcast(BasePermission):
    message = "broadcasting needs the hub.broadcast permission"

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm(BROADCAST_PERMISSION))


def can_notify_others(user) -> bool:
    """Creating a notification for someone else needs the same right as broadcasting."""
    return bool(user and user.is_authenticated and user.has_perm(BROADCAST_PERMISSION))


BROADCASTER_RATE_LIMIT_DEFAULT = "12000/min"


def api_rate_limit(variable: str = "HUB_API_RATE_LIMIT",
                   default: str = RATE_LIMIT_DEFAULT) -> tuple[int, int]:
    """(requests, seconds) from HUB_API_RATE_LIMIT (or ``variable``)."""
    raw = os.environ.get(variable, "").strip() or default
    count, _, period = raw.partition("/")
    try:
        requests = int(count)
    except ValueError:
        requests = 0
    seconds = _PERIODS.get(period.strip().lower())
    if requests < 1 or seconds is None:
        raise ImproperlyConfigured(
            f"{variable} must look like 600/min (periods: s, min, h, day), got {raw!r}")
    return requests, seconds


class HubApiThrottle(SimpleRateThrottle):
    scope = "hub_api"

    def get_rate(self) -> str:
        requests, seconds = api_rate_limit()
        return f"{requests}/{seconds}"

    def allow_request(self, request, view) -> bool:
        """Publishers with ``hub.broadcast`` (the Slurm monitor's service account posts two
        requests per job event) get HUB_API_BROADCASTER_RATE_LIMIT, default 12000/min."""
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.has_perm("hub.broadcast"):
            self.num_requests, self.duration = api_rate_limit(
                "HUB_API_BROADCASTER_RATE_LIMIT", BROADCASTER_RATE_LIMIT_DEFAULT)
            self.scope = "hub_api_broadcaster"
        return super().allow_request(request, view)

    def parse_rate(self, rate):
        if rate is None:
            return (None, None)
        requests, seconds = rate.split("/")
        return int(requests), int(seconds)

    def get_cache_key(self, request, view) -> str:
        if request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
