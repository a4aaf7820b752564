"""In-process backends (the embedded default): history ring and presence for one process.

Twins of ``hub.engine.redis``: both pass tests/hub/test_backends.py (same contract).
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable

from hub.engine.base import ClientInfo

DEFAULT_HISTORY_TTL = 86400.0
# Channels one ``sweep`` evicts at most: a sweep after a burst of junk names costs a bounded
# slice of one housekeeping tick; the rest go at the next sweep (or lazily when touched).
SWEEP_LIMIT = 5000


class _Channel:
    __slots__ = ("epoch", "expires", "offset", "ring")

    def __init__(self, epoch: str, expires: float) -> None:
        self.offset = 0
        self.epoch = epoch
        self.ring: deque[tuple[int, str]] | None = None
        self.expires = expires


class MemoryHistory:
    """Per-channel offsets, epochs and a bounded ring of publications.

    Each channel has its own epoch, made when the channel's state is created (first
    publication or first read of its top). The state expires ``ttl_seconds`` after its last
    publication (PROTOCOL.md §4, ``HUB_HISTORY_TTL``): a channel that comes back starts a new
    epoch, so a client recovering from the old one is told ``recovered: false``, never given
    a silent gap. A restart loses everything: new epochs too. Expired channels go lazily when
    touched and in ``sweep`` (housekeeping), oldest first: channels are kept in expiry order
    (every write sets ``now + ttl`` and moves the channel to the end), so a sweep stops at
    the first live one."""

    def __init__(self, ttl_seconds: float = DEFAULT_HISTORY_TTL,
                 clock: Callable[[], float] = time.monotonic,
                 new_epoch: Callable[[], str] = lambda: secrets.token_hex(4)) -> None:
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._new_epoch = new_epoch
        self._channels: OrderedDict[str, _Channel] = OrderedDict()

    def _state(self, channel: str, create: bool = True) -> _Channel | None:
        now = self._clock()
        state = self._channels.get(channel)
        if state is not None and state.expires <= now:
            del self._channels[channel]
            state = None
        if state is None and create:
            state = self._channels[channel] = _Channel(self._new_epoch(), now + self.ttl_seconds)
        return state

    async def append(self, channel: str, maxlen: int, head: str, tail: str) -> tuple[int, str, str]:
        """The next offset and the frame text with it; returns (offset, text, epoch)."""
        state = self._state(channel)
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
        state = self._state(channel)
        return state.offset, state.epoch

    async def since(self, channel: str, offset: int) -> tuple[list[tuple[int, str]] | None, int, str]:
        """Publications after ``offset`` up to the top, or None when history cannot reach back."""
        state = self._state(channel)
        top, epoch = state.offset, state.epoch
        if offset > top:
            return None, top, epoch
        if offset == top:
            return [], top, epoch
        items = [item for item in state.ring or () if item[0] > offset]
        if not items or items[0][0] != offset + 1:
            return None, top, epoch
        return items, top, epoch

    async def positions(self, channels: Iterable[str]) -> dict[str, tuple[int, str]]:
        """(offset, epoch) per channel, read only: (0, "") for a channel with no state."""
        result = {}
        for name in channels:
            state = self._state(name, create=False)
            result[name] = (state.offset, state.epoch) if state is not None else (0, "")
        return result

    async def last_offsets(self, channels: list[str]) -> dict[str, int]:
        return {name: pos[0] for name, pos in (await self.positions(channels)).items()}

    async def touch(self, channels: Iterable[str]) -> None:
        """Keep these channels' state alive another ``ttl_seconds`` (they have subscribers
        here: a live subscriber should not see its channel restart for want of traffic)."""
        expires = self._clock() + self.ttl_seconds
        for name in channels:
            state = self._state(name, create=False)
            if state is not None:
                state.expires = expires
                self._channels.move_to_end(name)

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

    shares_clients = False  # publish_state ignores the client list: do not build it

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

    async def publish_state(self, stats, clients: list[ClientInfo]) -> None:
        return None  # one process: the node itself is the source of truth

    async def cluster_state(self):
        return None
