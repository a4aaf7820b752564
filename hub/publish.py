"""THE publish API: the one road for every server-side publication (REST, the Slurm monitor's
layer sink, notifications, handlers).

    offset = await publish("jobs", "job_state_changed", {...})
    offset = await send_to_user("alice", "notification", {...})   # channel user:alice
    offset = await broadcast_all("maintenance", {...})             # every socket, channel "all"
    results = await publish_many([("jobs", "job_submitted", {...}), ...])  # in order

The frame text is built once by the engine; each server process gets it once; each local
subscriber's socket is written the same text. Sync code uses the ``*_sync`` twins.
Raises ``PublishError`` (bad channel or event name) or ``HubUnavailable`` (a backing service
such as Redis is down, or no answer within DEADLINE_SECONDS: nothing was published).

One deadline: DEADLINE_SECONDS bounds each engine call made by ``publish_many`` and by the
``*_sync`` twins (REST, notifications, management commands), so a dead Redis answers
"unavailable" in about that time instead of hanging a request. The async ``publish`` itself
is not bounded: an async caller that wants the bound uses ``publish_many`` (or its own).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Union

from asgiref.sync import async_to_sync

from hub.engine.contracts import CALL_DEADLINE_SECONDS
from hub.engine.errors import HubUnavailable, PublishError
from hub.engine.node import get_node

__all__ = ["ALL_CHANNEL", "DEADLINE_SECONDS", "HubUnavailable", "PublishError", "Outcome",
           "broadcast_all", "broadcast_all_sync", "publish", "publish_many", "publish_many_sync",
           "publish_sync", "send_to_user", "send_to_user_sync", "user_channel"]

ALL_CHANNEL = "all"
DEADLINE_SECONDS = CALL_DEADLINE_SECONDS  # the engine's one deadline (hub.engine.contracts)

MAX_ITEMS_PER_CALL = 1000  # items per engine call (PROTOCOL.md §6 caps a REST list at this)

# One item's outcome in ``publish_many``: its offset, or why it was not published.
Outcome = Union[int, PublishError, HubUnavailable]


def user_channel(username: str) -> str:
    return f"user:{username}"


async def publish(channel: str, event: str, data: Any) -> int:
    return await get_node().publish(channel, event, data)


async def send_to_user(username: str, event: str, data: Any) -> int:
    return await publish(user_channel(username), event, data)


async def broadcast_all(event: str, data: Any) -> int:
    return await publish(ALL_CHANNEL, event, data)


async def publish_bounded(channel: str, event: str, data: Any,
                          deadline: float = DEADLINE_SECONDS) -> int:
    """``publish`` cut off after ``deadline`` seconds (HubUnavailable: the hub did not answer)."""
    try:
        async with asyncio.timeout(deadline):  # a timer handle, not a task per publication
            return await publish(channel, event, data)
    except TimeoutError:
        raise HubUnavailable("hub", f"no answer within {deadline:g}s") from None


async def publish_many(items: Iterable[tuple[str, str, Any]],
                       deadline: float = DEADLINE_SECONDS) -> list[Outcome]:
    """Publish ``(channel, event, data)`` items in order; one outcome per item: its offset,
    or the PublishError that refused it (the next items are still tried).

    The items go to the engine together (``Node.publish_many``: with Redis one round trip
    per MAX_ITEMS_PER_CALL items), each such slice bounded by ``deadline``. The first
    HubUnavailable (a backing service down, or no answer within ``deadline``) stops the
    run: every item of that slice and of the later ones gets that error and was NOT
    published (nor known to be); the slices before were. Never raises either error itself."""
    pending = list(items)
    outcomes: list[Outcome] = []
    node = get_node()
    for start in range(0, len(pending), MAX_ITEMS_PER_CALL):
        chunk = pending[start:start + MAX_ITEMS_PER_CALL]
        try:
            async with asyncio.timeout(deadline):  # a timer handle, not a task
                outcomes.extend(await node.publish_many(chunk))
        except (HubUnavailable, TimeoutError) as exc:
            error = exc if isinstance(exc, HubUnavailable) else HubUnavailable(
                "hub", f"no answer within {deadline:g}s")
            outcomes.extend([error] * (len(pending) - start))
            break
    return outcomes


async def _send_to_user_bounded(username: str, event: str, data: Any) -> int:
    return await publish_bounded(user_channel(username), event, data)


async def _broadcast_all_bounded(event: str, data: Any) -> int:
    return await publish_bounded(ALL_CHANNEL, event, data)


publish_sync = async_to_sync(publish_bounded)
send_to_user_sync = async_to_sync(_send_to_user_bounded)
broadcast_all_sync = async_to_sync(_broadcast_all_bounded)
publish_many_sync = async_to_sync(publish_many)
