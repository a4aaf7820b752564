"""The audited broadcast service: what ``POST /api/broadcast`` calls.

Every attempt is published through THE publish API (``hub.publish``) and recorded in
BroadcastAudit (who, when, target, event type, size, result), failures included; the view
records attempts the publish rule refused as RESULT_FORBIDDEN. A publish
that gets no answer within PUBLISH_TIMEOUT_SECONDS counts as the hub being unavailable, so
REST answers 503 quickly instead of hanging on a dead Redis.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync

from hub import publish as hub_publish
from hub.engine.errors import HubUnavailable, PublishError

logger = logging.getLogger(__name__)

PUBLISH_TIMEOUT_SECONDS = 1.5
RESULT_OK = "ok"
RESULT_UNAVAILABLE = "hub_unavailable"
RESULT_INTERNAL = "internal_error"
RESULT_TOO_LARGE = "payload_too_large"
RESULT_FORBIDDEN = "permission_denied"  # refused by the publish rule (hub.policies.may_publish)


@dataclass(frozen=True)
class BroadcastTarget:
    kind: str  # "channel" | "all" | "user"
    name: str  # channel name, "all", or username

    @property
    def channel(self) -> str:
        if self.kind == "user":
            return hub_publish.user_channel(self.name)
        return self.name


class MessageTooLarge(Exception):
    """The encoded message is over the limit; nothing was published (the attempt is audited)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"message is {size} bytes; the limit is {limit}")
        self.size = size
        self.limit = limit


@dataclass(frozen=True)
class BroadcastResult:
    channel: str
    offset: int


def encoded_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON: the size the audit log records."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def target_for(*, channel: str | None = None, user: str | None = None) -> BroadcastTarget:
    if user is not None:
        return BroadcastTarget("user", user)
    if channel == hub_publish.ALL_CHANNEL:
        return BroadcastTarget("all", channel)
    return BroadcastTarget("channel", channel or "")


async def _publish_bounded(target: BroadcastTarget, event: str, data: Any) -> int:
    if target.kind == "user":
        coro = hub_publish.send_to_user(target.name, event, data)
    elif target.kind == "all":
        coro = hub_publish.broadcast_all(event, data)
    else:
        coro = hub_publish.publish(target.name, event, data)
    try:
        return await asyncio.wait_for(coro, PUBLISH_TIMEOUT_SECONDS)
    except asyncio.TimeoutError:
        raise HubUnavailable("hub", f"no answer within {PUBLISH_TIMEOUT_SECONDS:g}s") from None


def broadcast(username: str, target: BroadcastTarget, event: str, data: Any, *,
              max_size: int | None = None) -> BroadcastResult:
    """Publish ``event``/``data`` to ``target`` as ``username``; audit it whatever happens.

    Raises MessageTooLarge (over ``max_size`` bytes), PublishError or HubUnavailable after
    recording the failure.
    """
    size = encoded_size({"type": event, "data": data})
    if max_size is not None and size > max_size:
        record(username, target, event, size, RESULT_TOO_LARGE)
        raise MessageTooLarge(size, max_size)
    try:
        offset = async_to_sync(_publish_bounded)(target, event, data)
    except PublishError as exc:
        record(username, target, event, size, exc.code, error=exc.message)
        raise
    except HubUnavailable as exc:
        record(username, target, event, size, RESULT_UNAVAILABLE, error=str(exc))
        raise
    except Exception as exc:
        record(username, target, event, size, RESULT_INTERNAL, error=repr(exc))
        raise
    record(username, target, event, size, RESULT_OK, offset=offset)
    return BroadcastResult(channel=target.channel, offset=offset)


def record(username: str, target: BroadcastTarget, event: str, size: int, result: str, *,
           offset: int | None = None, error: str = "") -> None:
    from hub.models import BroadcastAudit

    BroadcastAudit.objects.create(
        username=username[:150], target_kind=target.kind, target=target.name[:200],
        event_type=event[:100], size_bytes=size, result=result[:40], offset=offset,
        error=error[:2000],
    )
