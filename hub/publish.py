"""THE publish API. Everything server-side (REST, the Slurm monitor, handlers) goes through it.

    offset = await publish("jobs", "job_state_changed", {...})
    offset = await send_to_user("alice", "notification", {...})   # channel user:alice
    offset = await broadcast_all("maintenance", {...})             # every socket, channel "all"

The frame text is built once by the engine; each server process gets it once; each local
subscriber's socket is written the same text. Sync code uses the ``*_sync`` twins.
Raises ``PublishError`` (bad channel or event name) or ``HubUnavailable`` (a backing service
such as Redis is down: nothing was published).
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync

from hub.engine.errors import HubUnavailable, PublishError  # noqa: F401  (re-exported)

ALL_CHANNEL = "all"


def user_channel(username: str) -> str:
    return f"user:{username}"


async def publish(channel: str, event: str, data: Any) -> int:
    from hub.engine.node import get_node

    return await get_node().publish(channel, event, data)


async def send_to_user(username: str, event: str, data: Any) -> int:
    return await publish(user_channel(username), event, data)


async def broadcast_all(event: str, data: Any) -> int:
    return await publish(ALL_CHANNEL, event, data)


publish_sync = async_to_sync(publish)
send_to_user_sync = async_to_sync(send_to_user)
broadcast_all_sync = async_to_sync(broadcast_all)
