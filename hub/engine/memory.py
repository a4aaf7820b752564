"""In-process backends (the embedded default): history, presence and broker for one process.

Twins of ``hub.engine.redis`` behind ``hub.engine.contracts`` (History, Presence, Broker):
both pass tests/hub/test_backends.py. Nothing here does I/O or raises ``HubUnavailable``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import Literal, overload

from hub.engine.contracts import (NO_HANDLER, Appendable, BrokerHandler, ClientInfo, ClusterState,
                                  ProcessStats)

logger = logging.getLogger("hub.engine")

DEFAULT_HISTORY_TTL = 86400.0
# Channels one ``sweep`` evicts at most: a sweep after a burst of junk names costs a bounded
# slice of one housekeeping tick; the rest go at the next sweep (or lazily when touched).
SWEEP_LIMIT = 5000


def derive_epoch(salt: str, ttl_seconds: float, window: int, channel: str) -> str:
    """The epoch of ``channel``'s life begun in TTL window ``window`` (the Redis twin computes
    the same in Lua, from its own salt and clock)."""
    text = f"{salt}:{int(ttl_seconds * 1000)}:{window}:{channel}"
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:8]


class _Channel:
    __slots__ = ("epoch", "expires", "offset", "ring")

    def __init__(self, epoch: str, expires: float) -> None:
        self.offset = 0
        self.epoch = epoch
        self.ring: deque[tuple[int, str]] | None = None
        self.expires = expires


class MemoryHistory:
    """Per-channel offsets, epochs and a bounded ring of publications.

    A channel's state is made by its first publication and expires ``ttl_seconds`` after
    its last one (PROTOCOL.md §4, ``HUB_HISTORY_TTL``). Reading a channel without state
    makes nothing (subscribing to made-up names costs no memory here): its top is 0 and its
    epoch is ``epoch_for(channel, window)``, the one its first publication in the same TTL
    window will get, so a client that subscribed before that publication recovers in the
    same epoch. Two lives of one channel never share an epoch: the second starts at least a
    TTL after the first began, so in a later window. A restart makes a new salt: new epochs.
    Expired channels go lazily when read and in ``sweep`` (housekeeping), oldest first:
    channels are kept in expiry order (every write sets ``now + ttl`` and moves the channel
    to the end), so a sweep stops at the first live one."""

    def __init__(self, ttl_seconds: float = DEFAULT_HISTORY_TTL,
                 clock: Callable[[], float] = time.monotonic,
                 epoch_for: Callable[[str, int], str] | None = None) -> None:
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        salt = secrets.token_hex(8)
        self._epoch_for = epoch_for or (lambda channel, window: derive_epoch(
            salt, ttl_seconds, window, channel))
        self._channels: OrderedDict[str, _Channel] = OrderedDict()

    def _window(self, now: float) -> int:
        return int(now // self.ttl_seconds)

    @overload
    def _state(self, channel: str, create: Literal[True]) -> _Channel: ...
    @overload
    def _state(self, channel: str, create: bool = False) -> _Channel | None: ...

    def _state(self, channel: str, create: bool = False) -> _Channel | None:
        now = self._clock()
        state = self._channels.get(channel)
        if state is not None and state.expires <= now:
            del self._channels[channel]
            state = None
        if state is None and create:
            epoch = self._epoch_for(channel, self._window(now))
            state = self._channels[channel] = _Channel(epoch, now + self.ttl_seconds)
        return state

    def _position(self, channel: str) -> tuple[_Channel | None, int, str]:
        state = self._state(channel)
        if state is None:
            return None, 0, self._epoch_for(channel, self._window(self._clock()))
        return state, state.offset, state.epoch

    async def append(self, channel: str, maxlen: int, head: str, tail: str) -> tuple[int, str, str]:
        """The next offset and the frame text with it; returns (offset, text, epoch)."""
        return self.append_now(channel, maxlen, head, tail)

    async def append_many(self, items: list[Appendable]) -> list[tuple[int, str, str]]:
        """``append`` of each item in order (nothing can come in between: no await)."""
        append = self.append_now
        return [append(channel, maxlen, head, tail) for channel, maxlen, head, tail in items]

    def append_now(self, channel: str, maxlen: int, head: str, tail: str) -> tuple[int, str, str]:
        """``append`` without the coroutine (this twin does no I/O)."""
        state = self._state(channel, create=True)
        state.offset += 1
        offset = state.offset
        text = f"{head}{offset}{tail}"
        if maxlen > 0:
            ring = state.ring
            if ring is None or ring.maxlen != maxlen:
                ring = state.ring = deque(ring or (), maxlen=maxlen)
            ring.append((offset, text))
        state.expires = self._clock() + self.ttl_seconds
        self._channels.move_to_end(channel)
        return offset, text, state.epoch

    async def top(self, channel: str) -> tuple[int, str]:
        _state, top, epoch = self._position(channel)
        return top, epoch

    async def since(self, channel: str, offset: int) -> tuple[list[tuple[int, str]] | None, int, str]:
        """Publications after ``offset`` up to the top, or None when history cannot reach back."""
        state, top, epoch = self._position(channel)
        if offset > top:
            return None, top, epoch
        if offset == top:
            return [], top, epoch
        assert state is not None  # offset >= 0 and offset < top, so top > 0: the channel has state
        items = [item for item in state.ring or () if item[0] > offset]
        if not items or items[0][0] != offset + 1:
            return None, top, epoch
        return items, top, epoch

    async def positions(self, channels: Iterable[str]) -> dict[str, tuple[int, str]]:
        """(offset, epoch) per channel, read only: (0, "") for a channel with no state."""
        result = {}
        for name in channels:
            state = self._state(name)
            result[name] = (state.offset, state.epoch) if state is not None else (0, "")
        return result

    async def last_offsets(self, channels: list[str]) -> dict[str, int]:
        return {name: pos[0] for name, pos in (await self.positions(channels)).items()}

    async def touch(self, channels: Iterable[str]) -> None:
        """Keep these channels' state alive another ``ttl_seconds`` (they have subscribers
        here: a live subscriber should not see its channel restart for want of traffic)."""
        expires = self._clock() + self.ttl_seconds
        for name in channels:
            state = self._state(name)
            if state is not None:
                state.expires = expires
                self._channels.move_to_end(name)

    async def ping(self) -> None:
        return None  # in this process: always there

    async def sweep(self, limit: int = SWEEP_LIMIT) -> int:
        """Drop expired channels, oldest first, at most ``limit``; returns how many went."""
        now, dropped = self._clock(), 0
        channels = self._channels
        while channels and dropped < limit:
            name, state = next(iter(channels.items()))
            if state.expires > now:
                break
            del channels[name]
            dropped += 1
        return dropped

    def channel_count(self) -> int:
        """Channels with state held (expired ones not yet swept included)."""
        return len(self._channels)


class MemoryPresence:
    """Client ids and per-user counts for one process (cluster-wide: the Redis twin)."""

    def __init__(self) -> None:
        self._client_ids: set[str] = set()
        self._users: dict[str, int] = {}

    async def claim_client(self, client_id: str, user: str | None, server: str) -> bool:
        if client_id in self._client_ids:
            return False
        self._client_ids.add(client_id)
        return True

    async def release_client(self, client_id: str, user: str | None) -> None:
        self._client_ids.discard(client_id)

    async def add_user_connection(self, user: str, client_id: str) -> int:
        self._users[user] = self._users.get(user, 0) + 1
        return self._users[user]

    async def remove_user_connection(self, user: str, client_id: str) -> None:
        count = self._users.get(user, 0) - 1
        if count > 0:
            self._users[user] = count
        else:
            self._users.pop(user, None)

    async def publish_state(self, stats: ProcessStats,
                            list_clients: Callable[[], list[ClientInfo]]) -> None:
        return None  # one process: the node itself is the source of truth (never lists)

    async def cluster_state(self, local: Callable[[], ClusterState]) -> ClusterState:
        return local()  # the cluster is this process


class MemoryBroker:
    """``Broker`` for one process: a publication is handed to this process's hub by a direct
    call, no channel layer in between (the loopback through ``InMemoryChannelLayer`` cost a
    layer message, a queue and a task wake-up per publication, and its capacity could refuse
    a burst). Delivery cannot be lost, so there is nothing to probe or repair; joining is
    bookkeeping (the handler's ``on_joined``/``on_left``, as with Redis)."""

    def __init__(self, history: MemoryHistory) -> None:
        self.history = history
        self.delivery_suspect = False
        self._handler: BrokerHandler = NO_HANDLER
        self._joined: set[str] = set()
        self._leaving: set[str] = set()

    async def start(self, handler: BrokerHandler) -> None:
        self._handler = handler

    def stop(self) -> None:
        return None

    async def publish(self, channel: str, maxlen: int, head: str, tail: str,
                      published_at: float) -> int:
        offset, text, epoch = self.history.append_now(channel, maxlen, head, tail)
        if channel in self._joined:  # as with Redis: only a joined channel is delivered
            self._deliver(channel, offset, text, published_at, epoch)
            # One loop turn per publication, as the loopback through the in-memory layer
            # gave: the fan-out pass starts before the publisher's next publication, so a
            # burst from one coroutine is not written as one lump per socket (which a
            # socket's HUB_MAX_QUEUED_BYTES would count whole: tests/hub/test_consumer.py).
            await asyncio.sleep(0)
        return offset

    async def publish_many(self, items: list[Appendable], published_at: float) -> list[int]:
        """Every item appended first (in order, no await in between: the offsets of a
        channel follow the list), then each delivered in order, one loop turn per delivered
        publication as ``publish`` (a list to a channel nobody here joined costs no turn)."""
        appended = await self.history.append_many(items)
        joined = self._joined
        for (channel, *_rest), (offset, text, epoch) in zip(items, appended):
            if channel in joined:
                self._deliver(channel, offset, text, published_at, epoch)
                await asyncio.sleep(0)
        return [offset for offset, _text, _epoch in appended]

    def _deliver(self, channel: str, offset: int, text: str, published_at: float,
                 epoch: str) -> None:
        try:  # the publication happened: a fan-out bug is logged, not the caller's
            self._handler.on_publication(channel, offset, text, published_at, epoch)
        except Exception:
            logger.exception("fan-out failed for %r", channel)

    async def send_control(self, data: dict) -> None:
        self._handler.on_control(data)

    async def join(self, channel: str) -> None:
        if channel not in self._joined:
            self._joined.add(channel)
            await self._handler.on_joined(channel)

    def leave_soon(self, channel: str) -> None:
        # Next loop turn, as the Redis twin's leave (a resubscribe meanwhile keeps the state).
        if channel not in self._leaving:
            self._leaving.add(channel)
            asyncio.get_running_loop().call_soon(self._leave, channel)

    def _leave(self, channel: str) -> None:
        self._leaving.discard(channel)
        if not self._handler.is_wanted(channel):
            self._handler.on_left(channel)
            self._joined.discard(channel)

    async def refresh(self) -> None:
        return None

    async def probe(self) -> bool:
        return True

    async def reconnect(self) -> None:
        return None

    def per_channel_sizes(self) -> dict[str, int]:
        return {"joined": len(self._joined), "leaving": len(self._leaving)}

    def leaves_pending(self) -> bool:
        return bool(self._leaving)
