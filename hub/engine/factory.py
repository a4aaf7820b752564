"""Builds this process's node from settings: backends chosen here, configured by kwargs."""

from __future__ import annotations

import logging

from channels.layers import get_channel_layer

from hub.conf import get_policies, hub_settings
from hub.engine.node import Node, group_name

logger = logging.getLogger("hub.engine")


def history_size_for(channel: str) -> int | None:
    """How many publications ``channel`` keeps; None if no policy matches it."""
    from hub.publish import ALL_CHANNEL

    if channel == ALL_CHANNEL or channel.startswith("user:"):
        policy = get_policies().resolve(channel)
        return policy.history if policy is not None else hub_settings.HISTORY_SIZE
    policy = get_policies().resolve(channel)
    return None if policy is None else policy.history


def build_node() -> Node:
    if hub_settings.REDIS_URL:
        from hub.engine.redis import RedisHistory, RedisPresence, redis_client

        client = redis_client(hub_settings.REDIS_URL)
        layer = get_channel_layer()
        prefix = hub_settings.CHANNEL_PREFIX

        def group_channel_for(channel: str) -> str:
            # The pub/sub layer's own Redis channel for the group (verified end to end by
            # tests/hub/test_cluster.py: a change in channels-redis fails delivery there).
            return layer._get_layer()._get_group_channel_name(group_name(prefix, channel))

        history = RedisHistory(client, prefix=prefix, group_channel_for=group_channel_for,
                               ttl_seconds=hub_settings.HISTORY_TTL)
        presence = RedisPresence(client, prefix=hub_settings.CHANNEL_PREFIX,
                                 ttl_seconds=max(3.0, 2 * hub_settings.HEARTBEAT_INTERVAL))
    else:
        from hub.engine.memory import MemoryHistory, MemoryPresence

        history, presence = MemoryHistory(ttl_seconds=hub_settings.HISTORY_TTL), MemoryPresence()
    return Node(layer=get_channel_layer(), history=history, presence=presence,
                server_name=hub_settings.SERVER_NAME, prefix=hub_settings.CHANNEL_PREFIX,
                history_size_for=history_size_for,
                timings={"heartbeat": hub_settings.HEARTBEAT_INTERVAL,
                         "connection_timeout": hub_settings.CONNECTION_TIMEOUT,
                         "auth_timeout": hub_settings.AUTH_TIMEOUT},
                report=report_stats, fanout_chunk=hub_settings.FANOUT_CHUNK)


async def report_stats(node: Node) -> None:
    """Share this process's figures: presence (cluster-wide with Redis) and the database
    rows the admin reads (``hub.stats_recorder``, when installed). Also, on the same beat,
    the history's housekeeping (``Node.sweep_history``: expiry, subscribed channels kept)."""
    from asgiref.sync import sync_to_async

    from hub.selectors import local_clients, local_process_stats

    try:
        await node.sweep_history()
    except Exception:
        logger.warning("history sweep failed", exc_info=True)

    stats = local_process_stats(node)
    clients = local_clients(node) if node.presence.shares_clients else []
    try:
        await node.presence.publish_state(stats, clients)
    except Exception:
        logger.warning("presence update failed (Redis down?)", exc_info=True)
    try:
        from hub import stats_recorder
    except ImportError:
        return
    try:
        await sync_to_async(stats_recorder.record, thread_sensitive=False)(stats)
    except Exception:
        logger.warning("stats recording failed", exc_info=True)
