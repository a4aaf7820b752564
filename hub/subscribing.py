"""Carrying out a ``subscribe`` effect for one socket: join, ``subscribed``, then recovery
(PROTOCOL.md §5). Split from ``hub.consumers`` to keep the consumer thin.

``conn`` is the consumer: it has ``node``, ``session``, ``write_text`` and ``write_error``.
"""

from __future__ import annotations

import logging

from hub import protocol as p
from hub import session as s
from hub.engine.errors import HubUnavailable
from hub.engine.node import Subscription

logger = logging.getLogger("hub.consumer")


async def subscribe(conn, effect: s.Subscribe) -> None:
    """Subscribe in request order; recoveries run after every ``subscribed`` is out."""
    node, recover = conn.node, []
    for item in effect.items:
        if isinstance(item, s.Reply):
            node.stats.count_error(item.error or p.INVALID_MESSAGE)
            conn.write_text(item.text)
            continue
        try:
            sub = await node.subscribe(conn, item.channel)
            top, epoch = await node.history.top(item.channel)
        except HubUnavailable as exc:
            conn.session.forget(item.channel)
            await node.unsubscribe(conn, item.channel)
            conn.write_error(p.ProtocolError(
                p.INTERNAL_ERROR, f"not subscribed: {exc}", channel=item.channel,
                frame_id=effect.frame_id))
            continue
        conn.write_text(p.build_subscribed(item.channel, top, epoch, effect.frame_id))
        if item.since is None:
            node.go_live(sub, top)
        else:
            recover.append((sub, item, top, epoch))
    for sub, item, top, epoch in recover:
        await _recover(conn, sub, item, top, epoch)


async def _recover(conn, sub: Subscription, item: s.SubscribeItem, top: int, epoch: str) -> None:
    """PROTOCOL.md §5: replay after ``since``, then ``recovered``; the live stream resumes
    after the last replayed offset, so nothing is sent twice or skipped."""
    node, publications = conn.node, None
    if item.epoch is None or item.epoch == epoch:
        try:
            publications, top, current_epoch = await node.history.since(item.channel, item.since)
        except HubUnavailable:
            current_epoch = None
        if current_epoch != epoch:
            publications = None
    if publications is None:
        logger.info("recovery of %s from offset %s not possible (top %s, epoch %s/%s)",
                    item.channel, item.since, top, item.epoch, epoch)
        conn.write_text(p.build_recovered(item.channel, False))
        node.go_live(sub, top)
        return
    for _offset, text in publications:
        conn.write_text(text)
    last = publications[-1][0] if publications else item.since
    conn.write_text(p.build_recovered(item.channel, True, len(publications)))
    node.go_live(sub, max(last, item.since))
