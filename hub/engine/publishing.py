"""The publish side of the node (``Node.publish`` / ``Node.publish_many`` delegate here):
validate the channel and event, build the frame text once (head per channel and event, tail
per publication), hand it to the ``Broker``, count it. Nothing here touches sockets or
subscriptions: the broker's arrivals reach them through the hub (``hub.engine.hub``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from hub.socket import protocol as p
from hub.engine.contracts import Appendable, Broker
from hub.engine.errors import PublishError
from hub.engine.stats import NodeStats


class Publisher:
    """One per node. ``history_size_for(channel)``: the channel's history length, or None
    when there is no such channel (settings, ``hub.engine.factory``)."""

    __slots__ = ("broker", "stats", "history_size_for")

    def __init__(self, broker: Broker, stats: NodeStats,
                 history_size_for: Callable[[str], int | None]) -> None:
        self.broker = broker
        self.stats = stats
        self.history_size_for = history_size_for

    async def publish(self, channel: str, event: str, data: Any) -> int:
        """Validate, build the frame text once, publish; returns the offset. Raises
        PublishError (bad name, no such channel) or HubUnavailable (nothing published).
        ``data`` may be ``hub.socket.protocol.EncodedData`` (encoded already: not again)."""
        channel, maxlen, head = self.target(channel, event)
        tail = frame_tail(p.tail_start(p.utc_timestamp()), data)
        offset = await self.broker.publish(channel, maxlen, head, tail, time.time())
        self.stats.published += 1
        return offset

    async def publish_many(self, items: Iterable[tuple[str, str, Any]]) -> list[int | PublishError]:
        """``publish`` of each ``(channel, event, data)``, in order, in ONE broker call (one
        Redis round trip): a channel's offsets follow the list. An item ``publish`` would
        refuse gets its PublishError in its place and the others still go. Raises
        HubUnavailable for every item that was to be published (nothing was, or it is not
        known to be)."""
        start = p.tail_start(p.utc_timestamp())  # one list, one instant
        targets: dict[tuple[str, str], tuple[str, int, str] | PublishError] = {}
        outcomes: list[int | PublishError] = []
        ready: list[Appendable] = []
        for channel, event, data in items:
            target = targets.get((channel, event))  # a list repeats a few (channel, event)
            if target is None:
                try:
                    target = self.target(channel, event)
                except PublishError as exc:
                    target = exc
                targets[(channel, event)] = target
            try:
                if isinstance(target, PublishError):
                    raise target
                ready.append((target[0], target[1], target[2], frame_tail(start, data)))
                outcomes.append(0)  # replaced by the offset below
            except PublishError as exc:
                outcomes.append(exc)
        if ready:
            offsets = iter(await self.broker.publish_many(ready, time.time()))
            outcomes = [o if isinstance(o, PublishError) else next(offsets) for o in outcomes]
            self.stats.published += len(ready)
        return outcomes

    def target(self, channel: str, event: str) -> tuple[str, int, str]:
        """(channel, maxlen, frame head) of a publication, or PublishError."""
        if not p.is_valid_channel(channel):
            raise PublishError(p.INVALID_CHANNEL, f"invalid channel name {channel!r}")
        try:
            event = p.check_event_name(event)
        except p.ProtocolError as exc:
            raise PublishError(exc.code, exc.message) from None
        maxlen = self.history_size_for(channel)
        if maxlen is None:
            raise PublishError(p.UNKNOWN_CHANNEL, f"no channel {channel!r}")
        return channel, maxlen, p.publication_head(event, channel)


def frame_tail(start: str, data: Any) -> str:
    """A frame's tail from ``p.tail_start``: the data encoded once (or given encoded)."""
    try:
        return start + p.encode_data(data).text + "}"
    except p.ProtocolError as exc:
        raise PublishError(exc.code, exc.message) from None
