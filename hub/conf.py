"""Lazy access to the hub's settings (``settings.HUB``), read at use, never at import."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.conf import settings


class _HubSettings:
    def __getattr__(self, name: str) -> Any:
        try:
            return settings.HUB[name]
        except KeyError:
            raise AttributeError(f"HUB has no setting {name!r}") from None


hub_settings = _HubSettings()


@lru_cache(maxsize=1)
def get_policies():
    """The channel policies, built once per process from HUB_CHANNELS and HUB_PRIVATE_JOBS."""
    from hub.policies import build_policies

    return build_policies(settings.HUB["CHANNELS"], default_history=settings.HUB["HISTORY_SIZE"],
                          private_jobs=private_jobs())


def private_jobs() -> bool:
    """HUB_PRIVATE_JOBS: each user sees only their own jobs (live and over REST)."""
    return bool(settings.HUB.get("PRIVATE_JOBS", False))
