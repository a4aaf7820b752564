"""The node: one per server process. The only code that touches ``channel_layer.group_*``.

Fan-out (why it is cut this way): Channels as the docs teach it puts every consumer in a
layer group, so a publication costs one layer message, one task wake-up, one JSON encode and
(since Channels 4.2) one thread hop *per subscriber*. Here a publication's frame text is built
once (by the publisher), crosses the channel layer once per *process* (the process inbox joins
a hub channel's group when its first local subscriber arrives and leaves with the last), and
the process writes that same text to each local subscriber's socket without awaiting per
subscriber. Subscribers still join through ``group_add`` semantics; nothing per subscriber
crosses the layer.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import socket
import time
from typing import Any, Protocol

from hub import protocol as p
from hub.engine.errors import HubUnavailable, PublishError
from hub.engine.stats import NodeStats
from hub.transport import Payload

logger = logging.getLogger("hub.engine")

_MAX_GROUP_NAME = 99
MAX_RECOVERY_BUFFER = 10_000
JOIN_TIMEOUT_SECONDS = 2.0
BARRIER_WAIT_SECONDS = 0.7


def group_name(prefix: str, channel: str) -> str:
    """Hub channel -> Channels group name, injectively. Group names allow only
    ``A-Za-z0-9_.-`` (< 100 chars); hub names add ``:``. ``_`` is the escape character
    (``_u`` for ``_``, ``_c`` for ``:``); names too long after escaping are hashed under a
    different prefix, so the two forms never collide."""
    escaped = channel.replace("_", "_u").replace(":", "_c")
    name = f"{prefix}.c.{escaped}"
    if len(name) <= _MAX_GROUP_NAME:
        return name
    return f"{prefix}.h.{hashlib.sha256(channel.encode()).hexdigest()}"


class Connection(Protocol):
    """What the node needs from a consumer."""

    client_id: str
    username: str | None

    def write_payload(self, payload: Payload) -> bool: ...
    def write_text(self, text: str) -> bool: ...
    def request_close(self, code: int) -> None: ...


class Subscription:
    """A connection's subscription to one channel. While ``buffer`` is a list, live
    publications are held (the subscribe/recovery handshake is in progress)."""

    __slots__ = ("conn", "channel", "buffer")

    def __init__(self, conn: Connection, channel: str) -> None:
        self.conn = conn
        self.channel = channel
        self.buffer: list[tuple[int, Payload]] | None = []

    def deliver(self, offset: int, payload: Payload) -> None:
        buffer = self.buffer
        if buffer is None:
            self.conn.write_payload(payload)
        elif len(buffer) < MAX_RECOVERY_BUFFER:
            buffer.append((offset, payload))
        else:
            self.conn.request_close(p.CLOSE_SLOW_CONSUMER)


class Node:
    def __init__(self, *, layer: Any, history: Any, presence: Any, server_name: str,
                 prefix: str, history_size_for, timings: dict[str, float] | None = None,
                 report=None) -> None:
        self.layer = layer
        self.history = history
        self.presence = presence
        self.server_name = server_name
        self.prefix = prefix
        self._history_size_for = history_size_for
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.stats = NodeStats()
        self.connections: dict[str, Connection] = {}
        self.subscriptions: dict[str, dict[Connection, Subscription]] = {}
        self._joined: set[str] = set()
        self._group_locks: dict[str, asyncio.Lock] = {}
        self.inbox: str | None = None
        self._tasks: list[asyncio.Task] = []
        self._started = asyncio.Lock()
        self._barriers: dict[str, asyncio.Future] = {}
        self.last_offsets: dict[str, int] = {}  # per channel, last offset fanned out here
        self.channel_epochs: dict[str, str] = {}
        self._timings = timings or {"heartbeat": 30.0, "connection_timeout": 60.0,
                                    "auth_timeout": 5.0}
        self._report = report

    # --- lifecycle ------------------------------------------------------------------------

    async def ensure_started(self) -> None:
        if self.inbox is not None:
            return
        async with self._started:
            if self.inbox is None:
                self.inbox = await self.layer.new_channel(prefix=f"{self.prefix}.node.")
                loop = asyncio.get_running_loop()
                self._tasks.append(loop.create_task(self._listen(), name="hub-node-listener"))
                if self._report is not None:
                    from hub.engine.housekeeping import run_housekeeping

                    self._tasks.append(loop.create_task(
                        run_housekeeping(self, report=self._report, **self._timings),
                        name="hub-node-housekeeping"))

    async def _listen(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.inbox)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("channel layer receive failed; retrying")
                await asyncio.sleep(0.5)
                continue
            try:
                kind = message.get("type")
                if kind == "hub.fanout":
                    self.fan_out(message["c"], message["o"], message["t"], message.get("ts"),
                                 message.get("e"))
                elif kind == "hub.barrier":
                    arrived = self._barriers.get(message.get("m"))
                    if arrived is not None and not arrived.done():
                        arrived.set_result(None)
            except Exception:
                logger.exception("fan-out failed for %r", message.get("c"))

    # --- connections ----------------------------------------------------------------------

    def add_connection(self, conn: Connection) -> None:
        self.connections[conn.client_id] = conn
        self.stats.connection_opened()

    def remove_connection(self, conn: Connection) -> list[str]:
        """Forget ``conn``; returns the channels it was subscribed to."""
        if self.connections.get(conn.client_id) is conn:
            del self.connections[conn.client_id]
            self.stats.connection_closed()
        channels = [name for name, subs in self.subscriptions.items() if conn in subs]
        for name in channels:
            self._drop_subscription(conn, name)
        return channels

    # --- subscriptions --------------------------------------------------------------------

    async def subscribe(self, conn: Connection, channel: str) -> Subscription:
        """Register ``conn`` (buffering) and make sure this process receives ``channel``.
        The caller reads the history top next, then calls ``go_live``."""
        subs = self.subscriptions.setdefault(channel, {})
        existing = subs.get(conn)
        if existing is not None:
            if existing.buffer is None:
                existing.buffer = []
            return existing
        sub = subs[conn] = Subscription(conn, channel)
        await self._join(channel)
        return sub

    def go_live(self, sub: Subscription, after_offset: int) -> None:
        """Flush what arrived during the handshake, skipping offsets the client has."""
        buffer, sub.buffer = sub.buffer or [], None
        for offset, payload in buffer:
            if offset > after_offset:
                sub.conn.write_payload(payload)

    async def unsubscribe(self, conn: Connection, channel: str) -> None:
        self._drop_subscription(conn, channel)

    def _drop_subscription(self, conn: Connection, channel: str) -> None:
        subs = self.subscriptions.get(channel)
        if subs is None or subs.pop(conn, None) is None:
            return
        if not subs:
            del self.subscriptions[channel]
            asyncio.get_running_loop().create_task(self._leave(channel))

    def _lock(self, channel: str) -> asyncio.Lock:
        lock = self._group_locks.get(channel)
        if lock is None:
            lock = self._group_locks[channel] = asyncio.Lock()
        return lock

    async def _join(self, channel: str) -> None:
        if channel in self._joined:
            return
        await self.ensure_started()
        async with self._lock(channel):
            if channel not in self._joined:
                try:
                    await asyncio.wait_for(
                        self.layer.group_add(group_name(self.prefix, channel), self.inbox),
                        JOIN_TIMEOUT_SECONDS)
                except (asyncio.TimeoutError, OSError, ConnectionError) as exc:
                    raise HubUnavailable("redis", type(exc).__name__) from None
                except Exception as exc:
                    if _is_redis_error(exc):
                        raise HubUnavailable("redis", type(exc).__name__) from None
                    raise
                await self._barrier(channel)
                self._joined.add(channel)

    async def _barrier(self, channel: str) -> None:
        """Wait until this process really receives the group. redis-py's ``subscribe`` does
        not wait for Redis to confirm SUBSCRIBE, so a publication made right after
        ``group_add`` returns could still miss us while the history top we read next is
        already older than it: a silent gap. A marker sent through the group and received
        back proves the subscription is live."""
        marker = secrets.token_hex(8)
        arrived = self._barriers[marker] = asyncio.get_running_loop().create_future()
        try:
            for _attempt in range(3):
                await self.layer.group_send(group_name(self.prefix, channel),
                                            {"type": "hub.barrier", "m": marker})
                try:
                    await asyncio.wait_for(asyncio.shield(arrived), BARRIER_WAIT_SECONDS)
                    return
                except asyncio.TimeoutError:
                    continue
            raise HubUnavailable("redis", "subscription not confirmed")
        finally:
            self._barriers.pop(marker, None)

    async def _leave(self, channel: str) -> None:
        async with self._lock(channel):
            if channel in self.subscriptions or channel not in self._joined:
                return
            self._joined.discard(channel)
            self.last_offsets.pop(channel, None)
            self.channel_epochs.pop(channel, None)
            try:
                await self.layer.group_discard(group_name(self.prefix, channel), self.inbox)
            except Exception:
                logger.exception("group_discard failed for %r", channel)
            if channel not in self.subscriptions:
                self._group_locks.pop(channel, None)

    async def refresh_groups(self) -> None:
        """Re-add the inbox to every joined group: channels-redis expires group membership
        after ``group_expiry`` (24 h); a socket open longer must keep receiving."""
        for channel in list(self._joined):
            try:
                await self.layer.group_add(group_name(self.prefix, channel), self.inbox)
            except Exception:
                logger.exception("group refresh failed for %r", channel)

    # --- publishing -----------------------------------------------------------------------

    async def publish(self, channel: str, event: str, data: Any) -> int:
        if not p.is_valid_channel(channel):
            raise PublishError(p.INVALID_CHANNEL, f"invalid channel name {channel!r}")
        try:
            event = p.check_event_name(event)
        except p.ProtocolError as exc:
            raise PublishError(exc.code, exc.message) from None
        maxlen = self._history_size_for(channel)
        if maxlen is None:
            raise PublishError(p.UNKNOWN_CHANNEL, f"no channel {channel!r}")
        try:
            head, tail = p.build_publication_parts(event=event, channel=channel,
                                                   timestamp=p.utc_timestamp(), data=data)
        except p.ProtocolError as exc:
            raise PublishError(exc.code, exc.message) from None
        started = time.time()
        try:
            if getattr(self.history, "fans_out", False):
                # Redis: offset, history and delivery in one atomic step (hub.engine.redis).
                offset, _text = await self.history.append(channel, maxlen, head, tail, fanout=True)
            else:
                offset, text = await self.history.append(channel, maxlen, head, tail)
                await self.layer.group_send(group_name(self.prefix, channel), {
                    "type": "hub.fanout", "c": channel, "o": offset, "t": text, "ts": started,
                    "e": self.history.epoch})
        except HubUnavailable:
            raise
        except (OSError, ConnectionError, asyncio.TimeoutError) as exc:
            raise HubUnavailable("redis", type(exc).__name__) from None
        except Exception as exc:
            if _is_redis_error(exc):
                raise HubUnavailable("redis", type(exc).__name__) from None
            raise
        self.stats.published += 1
        return offset

    def fan_out(self, channel: str, offset: int, text: str, published_at: float | None,
                epoch: str | None = None) -> None:
        """Deliver one publication to this process's subscribers. Offsets seen before in
        the same epoch are skipped (a repair replay may overlap the live stream); a new epoch
        means the history was lost, so local subscribers are told ``recovered: false``."""
        subs = self.subscriptions.get(channel)
        if not subs:
            return
        if epoch is not None and self.channel_epochs.get(channel) != epoch:
            if channel in self.channel_epochs:
                self.reset_channel(channel)
            self.channel_epochs[channel] = epoch
            self.last_offsets[channel] = 0
        elif offset <= self.last_offsets.get(channel, 0):
            return
        self.last_offsets[channel] = offset
        payload = Payload(text)
        for sub in list(subs.values()):  # a write may close a socket and change ``subs``
            if sub.buffer is None:  # live: Subscription.deliver inlined (once per subscriber)
                sub.conn.write_payload(payload)
            else:
                sub.deliver(offset, payload)
        if published_at is not None:
            self.stats.observe_latency(time.time() - published_at)

    def reset_channel(self, channel: str) -> None:
        """Tell local subscribers their stream has a gap the history cannot fill."""
        text = p.build_recovered(channel, False)
        for sub in list(self.subscriptions.get(channel, {}).values()):
            sub.conn.write_text(text)

    def restart_listener(self) -> None:
        for task in self._tasks:
            if task.get_name() == "hub-node-listener":
                task.cancel()
        self._tasks = [t for t in self._tasks if t.get_name() != "hub-node-listener"]
        self._tasks.append(asyncio.get_running_loop().create_task(
            self._listen(), name="hub-node-listener"))

    # --- figures ---------------------------------------------------------------------------

    def subscription_counts(self) -> dict[str, int]:
        return {name: len(subs) for name, subs in self.subscriptions.items()}


def _is_redis_error(exc: Exception) -> bool:
    module = type(exc).__module__ or ""
    return module.startswith("redis")


_node: Node | None = None
_node_loop: asyncio.AbstractEventLoop | None = None


def get_node() -> Node:
    """This process's node, bound to the running event loop (built lazily)."""
    global _node, _node_loop
    loop = asyncio.get_running_loop()
    if _node is None or _node_loop is not loop:
        from hub.engine.factory import build_node

        _node, _node_loop = build_node(), loop
    return _node


def reset_node() -> None:
    """Tests: forget the node (a new event loop gets a new one)."""
    global _node, _node_loop
    if _node is not None:
        for task in _node._tasks:
            task.cancel()
    _node, _node_loop = None, None
