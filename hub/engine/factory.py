"""Builds this process's node parts from settings: backends chosen here (memory without
``REDIS_URL``, Redis with it), configured by kwargs; the backends never read settings.

Imports no other engine module that imports it back (``hub.engine.node`` imports this one).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from hub.conf import get_policies, hub_settings
from hub.engine.memory import MemoryBroker, MemoryHistory, MemoryPresence
from hub.engine.names import ALL_CHANNEL
from hub.engine.redis import RedisBroker, RedisHistory, redis_client
from hub.engine.redis_presence import RedisPresence

if TYPE_CHECKING:  # types only: the node imports this module
    from hub.engine.node import Node

logger = logging.getLogger("hub.engine")


def history_size_for(channel: str) -> int | None:
    """How many publications ``channel`` keeps; None if no policy matches it."""
    if channel == ALL_CHANNEL or channel.startswith("user:"):
        policy = get_policies().resolve(channel)
        return policy.history if policy is not None else hub_settings.HISTORY_SIZE
    policy = get_policies().resolve(channel)
    return None if policy is None else policy.history


def backends() -> dict[str, Any]:
    """history, presence and broker: the Redis twins with ``REDIS_URL``, else memory (one
    process: no channel layer at all, publications are handed to the hub directly)."""
    if hub_settings.REDIS_URL:
        client = redis_client(hub_settings.REDIS_URL)
        prefix = hub_settings.CHANNEL_PREFIX
        history = RedisHistory(client, prefix=prefix, ttl_seconds=hub_settings.HISTORY_TTL)
        presence = RedisPresence(client, prefix=prefix,
                                 ttl_seconds=max(3.0, 2 * hub_settings.HEARTBEAT_INTERVAL))
        return {"history": history, "presence": presence,
                "broker": RedisBroker(get_channel_layer(), history, prefix)}
    memory = MemoryHistory(ttl_seconds=hub_settings.HISTORY_TTL)
    return {"history": memory, "presence": MemoryPresence(), "broker": MemoryBroker(memory)}


def node_parts() -> dict[str, Any]:
    """Keyword arguments for ``Node``."""
    return {**backends(), "server_name": hub_settings.SERVER_NAME,
            "history_size_for": history_size_for,
            "timings": {"heartbeat": hub_settings.HEARTBEAT_INTERVAL,
                        "connection_timeout": hub_settings.CONNECTION_TIMEOUT,
                        "auth_timeout": hub_settings.AUTH_TIMEOUT},
            "report": report_stats, "fanout_chunk": hub_settings.FANOUT_CHUNK}


async def report_stats(node: Node) -> None:
    """Share this process's figures: presence (cluster-wide with Redis) and the database
    rows the admin reads (``hub.ops.stats_recorder``, when installed). Also, on the same beat,
    the history's housekeeping (``Node.sweep_history``: expiry, subscribed channels kept)."""
    try:
        await node.sweep_history()
    except Exception:
        logger.warning("history sweep failed", exc_info=True)

    stats = node.process_stats()
    try:
        await node.presence.publish_state(stats, node.client_infos)
    except Exception:
        logger.warning("presence update failed (Redis down?)", exc_info=True)
    try:
        # Django app-loading: hub.ops.stats_recorder imports the models, which need the app
        # registry ready; the engine is imported earlier (settings, routing).
        from hub.ops import stats_recorder
    except ImportError:
        return
    try:
        await sync_to_async(stats_recorder.record, thread_sensitive=False)(stats)
    except Exception:
        logger.warning("stats recording failed", exc_info=True)
