"""In-process backends (the embedded default): history ring and presence for one process.

Twins of ``hub.engine.redis``: both pass tests/hub/test_backends.py (same contract).
"""

from __future__ import annotations

import secrets
from collections import deque

from hub.engine.base import ClientInfo


class MemoryHistory:
    """Per-channel offsets and a bounded ring of publications. The epoch is per process
    start: a restart loses the history, and clients are told ``recovered: false``."""

    def __init__(self) -> None:
        self.epoch = secrets.token_hex(4)
        self._offsets: dict[str, int] = {}
        self._items: dict[str, deque[tuple[int, str]]] = {}

    async def append(self, channel: str, maxlen: int, head: str, tail: str) -> tuple[int, str]:
        offset = self._offsets.get(channel, 0) + 1
        self._offsets[channel] = offset
        text = f"{head}{offset}{tail}"
        if maxlen > 0:
            ring = self._items.get(channel)
            if ring is None or ring.maxlen != maxlen:
                ring = self._items[channel] = deque(ring or (), maxlen=maxlen)
            ring.append((offset, text))
        return offset, text

    async def top(self, channel: str) -> tuple[int, str]:
        return self._offsets.get(channel, 0), self.epoch

    async def since(self, channel: str, offset: int) -> tuple[list[tuple[int, str]] | None, int, str]:
        """Publications after ``offset`` up to the top, or None when history cannot reach back."""
        top = self._offsets.get(channel, 0)
        if offset > top:
            return None, top, self.epoch
        if offset == top:
            return [], top, self.epoch
        ring = self._items.get(channel) or ()
        items = [item for item in ring if item[0] > offset]
        if not items or items[0][0] != offset + 1:
            return None, top, self.epoch
        return items, top, self.epoch

    async def last_offsets(self, channels: list[str]) -> dict[str, int]:
        return {name: self._offsets.get(name, 0) for name in channels}


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
