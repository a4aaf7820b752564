"""Who may call what over REST (PROTOCOL.md section 6), and the REST rate limit.

- ``POST /api/broadcast``: the one publish rule, ``hub.policies.may_publish``; holding the
  ``hub.broadcast`` model permission (superusers have every permission) passes it anywhere.
- staff endpoints use DRF's ``IsAdminUser`` (``is_staff``).
- ``HubApiThrottle``: HUB_API_RATE_LIMIT requests per user (per IP when anonymous), e.g.
  ``600/min`` (default) or ``20/s``; read at use, validated with an error naming the variable.
  Counted in Django's cache: per process with the default local-memory cache.
- ``HealthThrottle``: ``/api/health`` for anonymous callers (probes, load balancers),
  HUB_API_HEALTH_RATE_LIMIT per IP (default ``120/min``); signed-in callers count against
  HUB_API_RATE_LIMIT like every other call. The IP is the peer address (DRF ``NUM_PROXIES``
  is 0: a client-sent X-Forwarded-For does not make a new identity).
"""

from __future__ import annotations

from rest_framework.throttling import SimpleRateThrottle

from realtime_project.env import env_rate

BROADCAST_PERMISSION = "hub.broadcast"
RATE_LIMIT_DEFAULT = "600/min"
HEALTH_RATE_LIMIT_DEFAULT = "120/min"


def can_notify_others(user) -> bool:
    """Creating a notification for someone else needs the same right as broadcasting."""
    return bool(user and user.is_authenticated and user.has_perm(BROADCAST_PERMISSION))


BROADCASTER_RATE_LIMIT_DEFAULT = "12000/min"


def api_rate_limit(variable: str = "HUB_API_RATE_LIMIT",
                   default: str = RATE_LIMIT_DEFAULT) -> tuple[int, int]:
    """(requests, seconds) from HUB_API_RATE_LIMIT (or ``variable``)."""
    return env_rate(variable, default)


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


class HealthThrottle(HubApiThrottle):
    scope = "hub_health"

    def allow_request(self, request, view) -> bool:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            self.scope = HubApiThrottle.scope  # the caller's usual REST budget
            return super().allow_request(request, view)
        self.num_requests, self.duration = api_rate_limit("HUB_API_HEALTH_RATE_LIMIT", HEALTH_RATE_LIMIT_DEFAULT)
        return SimpleRateThrottle.allow_request(self, request, view)
