"""Delivery self-check and repair (run by the housekeeping loop, every report interval).

A Redis restart (or a dropped pub/sub connection) can leave a process subscribed to nothing
while every publish still succeeds elsewhere: its sockets would silently stop receiving.
So the broker sends a probe to its own inbox (``Broker.probe``). No probe back means the
pub/sub side is broken: the broker reconnects (a new layer connection and listener), every
channel is joined again, and each is caught up from the history from the last offset this
process delivered. Where the history cannot fill the gap (it was lost with Redis: a new
epoch), local subscribers get ``recovered: false``. The memory broker's probe always
succeeds (a direct call cannot be lost), so for it this is a no-op, with no flag to ask.

Uses only the public methods of the hub, the broker and the history.
"""

from __future__ import annotations

import logging
from typing import Any

from hub.engine.contracts import History
from hub.engine.errors import HubUnavailable
from hub.engine.hub import Hub

logger = logging.getLogger("hub.engine")


async def check_delivery(hub: Hub, broker: Any, history: History) -> None:
    """Probe; on failure (and the store reachable) rebuild the subscriptions and catch up.

    A probe that succeeds after one failed is not the all-clear: redis-py re-subscribes a
    pub/sub connection by itself when Redis comes back, so delivery works again, but what
    was published between Redis accepting publishes and that re-subscribe reached no one
    (seen as an intermittent test failure: a broadcast right after a Redis restart never
    arrived). So the first good probe after a bad one catches every channel up from the
    history (offsets already fanned out are skipped, so nothing is sent twice)."""
    if await broker.probe():
        if broker.delivery_suspect:
            logger.warning("pub/sub delivery is back; catching up %d channels",
                           len(hub.subscriptions))
            try:
                for channel in list(hub.subscriptions):
                    await catch_up(hub, history, channel)
            except HubUnavailable:
                return  # Redis went away again: stay suspect, try at the next check
            broker.delivery_suspect = False
        return
    broker.delivery_suspect = True
    try:
        await history.ping()  # Redis itself down: nothing to repair yet
    except HubUnavailable:
        return
    logger.warning("pub/sub delivery lost; resubscribing %d channels", len(hub.subscriptions))
    await rebuild(hub, broker, history)


async def rebuild(hub: Hub, broker: Any, history: History) -> None:
    await broker.reconnect()
    for channel in list(hub.subscriptions):
        try:
            await broker.join(channel)
            await catch_up(hub, history, channel)
        except HubUnavailable:
            logger.warning("could not rejoin %s; will retry", channel)
            return


async def catch_up(hub: Hub, history: History, channel: str) -> None:
    """Replay what this process missed on ``channel``. A new epoch (Redis lost its data) is
    a gap no history can fill: subscribers are told ``recovered: false`` first, then get
    what the new epoch holds."""
    _top, epoch = await history.top(channel)
    known = hub.known_epoch(channel)
    if known is not None and known != epoch:
        hub.restart_stream(channel, epoch, 0)
    publications, top, epoch = await history.since(channel, hub.resume_offset(channel))
    if publications is None:
        hub.restart_stream(channel, epoch, top)
        return
    for offset, text in publications:
        hub.fan_out(channel, offset, text, None, epoch)
