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
import logging
import os
import secrets
import socket
import time
from typing import Any, Protocol

from hub import protocol as p
from hub.engine.errors import HubUnavailable, PublishError
from hub.engine.names import group_name
from hub.engine.stats import NodeStats
from hub.transport import Payload, PayloadBatch

logger = logging.getLogger("hub.engine")

MAX_RECOVERY_BUFFER = 10_000
# Sockets written per turn of the event loop during a fan-out (HUB_FANOUT_CHUNK). Between
# turns the process reads its sockets (new publications, pings, subscribes), so a fan-out to
# many sockets does not stall the process, and publications that arrive meanwhile join the
# same writes. 50 sockets is ~0.5 ms of writing. Measured (docs/benchmarks.md, 5,000
# subscribers at 20/s; saturation at 1,000): 500 -> p99 133 ms, 88k deliveries/s saturated
# (126-926 ms p99 with the publisher on Redis: a publish waits a few loop turns, each 5 ms);
# 100 -> 108 ms, 298k/s (Redis: 209 ms); 50 -> 102 ms, 515k/s. Smaller turns let more
# publications into each pass, so more of them share one write per socket.
FANOUT_CHUNK = 50
JOIN_TIMEOUT_SECONDS = 2.0
BARRIER_WAIT_SECONDS = 0.7


class Connection(Protocol):
    """What the node needs from a consumer."""

    client_id: str
    username: str | None

    def write_payload(self, payload: Payload) -> bool: ...
    def write_text(self, text: str) -> bool: ...
    def request_close(self, code: int) -> None: ...


_DROPPED: tuple = ()  # ``Subscription.buffer`` of a subscription that has ended


class Subscription:
    """A connection's subscription to one channel. While ``buffer`` is a list, live
    publications are held (the subscribe/recovery handshake is in progress); ``None`` means
    live. ``sent`` is the last offset this subscription has been given (live or by
    recovery): the fan-out writes only what lies after it, so nothing goes out twice."""

    __slots__ = ("conn", "channel", "buffer", "sent")

    def __init__(self, conn: Connection, channel: str) -> None:
        self.conn = conn
        self.channel = channel
        self.buffer: list[tuple[int, Payload]] | tuple | None = []
        self.sent = 0

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
                 report=None, fanout_chunk: int = FANOUT_CHUNK) -> None:
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
        # Per channel: subscriptions still in their subscribe/recovery handshake, the
        # publications accepted but not yet written to every live subscriber, and the task
        # writing them (see ``fan_out``).
        self._buffering: dict[str, set[Subscription]] = {}
        self._logs: dict[str, list[tuple[int, Payload, float | None]]] = {}
        self._passes: dict[str, asyncio.Task] = {}
        self.fanout_chunk = fanout_chunk
        self._joined: set[str] = set()
        self._group_locks: dict[str, asyncio.Lock] = {}
        self.inbox: str | None = None
        self._tasks: list[asyncio.Task] = []
        self._started = asyncio.Lock()
        self._barriers: dict[str, asyncio.Future] = {}
        self.delivery_suspect = False  # a delivery probe failed (hub.engine.repair)
        self.join_marks: dict[str, tuple[int, str]] = {}  # channel -> (top, epoch) at join
        self.last_offsets: dict[str, int] = {}  # per channel, last offset fanned out here
        self.channel_epochs: dict[str, str] = {}
        self._next_touch = 0.0  # see sweep_history
        self._timings = timings or {"heartbeat": 30.0, "connection_timeout": 60.0,
                                    "auth_timeout": 5.0}
        self._report = report
        # Called with each control message's data (``broadcast_control``); set by the hub.
        self.control_handler = None

    # --- lifecycle ------------------------------------------------------------------------

    async def ensure_started(self) -> None:
        if self.inbox is not None:
            return
        async with self._started:
            if self.inbox is None:
                self.inbox = await self.layer.new_channel(prefix=f"{self.prefix}.node.")
                await self._join_control()
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
                elif kind == "hub.control":
                    if self.control_handler is not None:
                        self.control_handler(message.get("d") or {})
                elif kind == "hub.barrier":
                    arrived = self._barriers.get(message.get("m"))
                    if arrived is not None and not arrived.done():
                        arrived.set_result(None)
            except Exception:
                logger.exception("fan-out failed for %r", message.get("c"))

    # --- control: one message to every server process -------------------------------------

    async def broadcast_control(self, data: dict) -> None:
        """Send ``data`` (small, msgpack-able) to every server process's node, this one
        included, through a process-wide group every inbox joins at start-up; each node
        hands it to its ``control_handler``. For rare cluster-wide orders such as "close the
        sockets of this revoked session" (hub.credentials); never for publications. Works
        without a started node (a process that only serves HTTP can send). Best effort: a
        process that is not connected misses it (callers keep a slower guarantee)."""
        await self.layer.group_send(f"{self.prefix}.control", {"type": "hub.control", "d": data})

    async def _join_control(self) -> None:
        try:
            await asyncio.wait_for(self.layer.group_add(f"{self.prefix}.control", self.inbox),
                                   JOIN_TIMEOUT_SECONDS)
        except Exception:
            logger.warning("control group not joined (Redis down?); retried hourly",
                           exc_info=True)

    # --- connections ----------------------------------------------------------------------

    def add_connection(self, conn: Connection) -> None:
        self.connections[conn.client_id] = conn
        self.stats.connection_opened()

    def rename_connection(self, conn: Connection, old_id: str) -> None:
        """``conn.client_id`` changed from ``old_id`` (ids are claimed on admission)."""
        if self.connections.get(old_id) is conn:
            del self.connections[old_id]
            self.connections[conn.client_id] = conn

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
                self._catch_up(existing)  # what it was due as a live subscriber comes first
                existing.buffer = []
                self._buffering.setdefault(channel, set()).add(existing)
            return existing
        sub = subs[conn] = Subscription(conn, channel)
        self._buffering.setdefault(channel, set()).add(sub)
        await self._join(channel)
        return sub

    def go_live(self, sub: Subscription, after_offset: int) -> None:
        """Flush what arrived during the handshake, skipping offsets the client has."""
        buffer = sub.buffer
        if buffer is _DROPPED:
            return
        sub.buffer = None
        self._stop_buffering(sub)
        sent = after_offset
        for offset, payload in buffer or ():
            if offset > after_offset:
                sub.conn.write_payload(payload)
                sent = max(sent, offset)
        sub.sent = sent

    async def unsubscribe(self, conn: Connection, channel: str) -> None:
        sub = self.subscriptions.get(channel, {}).get(conn)
        if sub is not None and sub.buffer is None:
            self._catch_up(sub)  # published before the unsubscribe: still this client's
        self._drop_subscription(conn, channel)

    def _drop_subscription(self, conn: Connection, channel: str) -> None:
        subs = self.subscriptions.get(channel)
        if subs is None:
            return
        sub = subs.pop(conn, None)
        if sub is None:
            return
        self._stop_buffering(sub)
        sub.buffer = _DROPPED
        if not subs:
            del self.subscriptions[channel]
            asyncio.get_running_loop().create_task(self._leave(channel))

    def _stop_buffering(self, sub: Subscription) -> None:
        waiting = self._buffering.get(sub.channel)
        if waiting is not None:
            waiting.discard(sub)
            if not waiting:
                del self._buffering[sub.channel]

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
                if channel not in self.join_marks:
                    try:  # where this process came in: a catch-up never replays before it
                        self.join_marks[channel] = await self.history.top(channel)
                    except HubUnavailable:
                        pass

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
        """The last local subscriber left: leave the group and forget everything this
        process kept for the channel, so per-channel state shrinks back with its
        subscribers (a client subscribing to made-up names must not grow the process;
        tests/security/test_bounds.py). Also when the join never completed."""
        async with self._lock(channel):
            if channel in self.subscriptions:
                return
            self.last_offsets.pop(channel, None)
            self.join_marks.pop(channel, None)
            self.channel_epochs.pop(channel, None)
            if channel in self._joined:
                self._joined.discard(channel)
                try:
                    await self.layer.group_discard(group_name(self.prefix, channel), self.inbox)
                except Exception:
                    logger.exception("group_discard failed for %r", channel)
            if channel not in self.subscriptions:
                self._group_locks.pop(channel, None)

    async def sweep_history(self) -> None:
        """Housekeeping: drop expired history (the memory backend) and keep the history of
        channels with local subscribers alive, at most every third of ``HUB_HISTORY_TTL``
        (a subscribed but quiet channel should not restart its offsets under its
        subscribers, who would be told ``recovered: false`` for nothing)."""
        sweep = getattr(self.history, "sweep", None)
        if sweep is not None:
            await sweep()
        ttl = getattr(self.history, "ttl_seconds", None)
        now = time.monotonic()
        if ttl is None or now < self._next_touch:
            return
        self._next_touch = now + ttl / 3
        try:
            await self.history.touch(list(self.subscriptions))
        except HubUnavailable:
            self._next_touch = now  # Redis down: again at the next sweep

    async def refresh_groups(self) -> None:
        """Re-add the inbox to every joined group: channels-redis expires group membership
        after ``group_expiry`` (24 h); a socket open longer must keep receiving."""
        await self._join_control()
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
                offset, _text, _epoch = await self.history.append(channel, maxlen, head, tail,
                                                                  fanout=True)
            else:
                offset, text, epoch = await self.history.append(channel, maxlen, head, tail)
                await self.layer.group_send(group_name(self.prefix, channel), {
                    "type": "hub.fanout", "c": channel, "o": offset, "t": text, "ts": started,
                    "e": epoch})
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
        """Accept one publication for this process's subscribers. Offsets seen before in
        the same epoch are skipped (a repair replay may overlap the live stream); a new epoch
        means the history was lost, so local subscribers are told ``recovered: false``.

        Subscribers in their subscribe handshake get it in their buffer now; live ones get
        it from ``_deliver``, which writes the channel's accepted publications to its live
        subscribers ``fanout_chunk`` sockets per event-loop turn. When publications arrive
        faster than one process can write them, the ones that arrive during a fan-out go
        out together (``PayloadBatch``: one ``send`` per socket for all of them), so the
        backlog is caught up instead of growing; when the process keeps up, each goes out
        alone, in the loop turn after it arrived."""
        subs = self.subscriptions.get(channel)
        if not subs:
            return
        known = self.channel_epochs.get(channel)
        if epoch is not None and known != epoch:
            if known is None:
                # First publication since this process joined: compare with the epoch it
                # joined in. The channel may have expired since (HUB_HISTORY_TTL) and come
                # back at offset 1, below what its subscribers were given: without the reset
                # they would skip it silently. (A channel first published in a later TTL
                # window than the join also differs: one needless ``recovered: false``.)
                mark = self.join_marks.get(channel)
                known = mark[1] if mark is not None else epoch
            if known != epoch:
                self.reset_channel(channel)
            self.channel_epochs[channel] = epoch
            self.last_offsets[channel] = 0
        elif offset <= self.last_offsets.get(channel, 0):
            return
        self.last_offsets[channel] = offset
        payload = Payload(text)
        waiting = self._buffering.get(channel)
        if waiting:
            for sub in list(waiting):  # ``deliver`` may close a socket and change the set
                sub.deliver(offset, payload)
        log = self._logs.get(channel)
        if log is None:
            log = self._logs[channel] = []
        log.append((offset, payload, published_at))
        if channel not in self._passes:
            self._passes[channel] = asyncio.get_running_loop().create_task(
                self._deliver(channel), name=f"hub-fanout-{channel}")

    async def _deliver(self, channel: str) -> None:
        """Write ``channel``'s accepted publications to every live subscriber, then forget
        them. A pass goes over a snapshot of the subscribers in chunks; a pass during which
        more publications arrived is followed by another (subscribers already up to date
        cost one comparison). After each pass, what it started with has reached every
        subscriber (one that subscribed during the pass was given the rest in its handshake
        or comes after its history top), so that much of the log is dropped: under
        sustained load the log holds one pass's worth of publications, not the whole run."""
        me = asyncio.current_task()
        try:
            while True:
                log = self._logs.get(channel)
                if not log:
                    return
                subs = self.subscriptions.get(channel)
                if not subs:
                    log.clear()
                    return
                done_upto = len(log)
                last = log[-1]
                snapshot = list(subs.values())
                chunk = self.fanout_chunk
                for start in range(0, len(snapshot), chunk):
                    if start:
                        await asyncio.sleep(0)
                        if not log or self._logs.get(channel) is not log:
                            break  # flushed meanwhile (a reset): start over
                    self._write(snapshot[start:start + chunk], log)
                if (self._logs.get(channel) is log and len(log) >= done_upto
                        and log[done_upto - 1] is last):
                    self._delivered(log[:done_upto])
                    del log[:done_upto]
                    if not log:
                        return
        except Exception:
            logger.exception("fan-out failed for %r", channel)
            self._logs.pop(channel, None)
        finally:
            if self._passes.get(channel) is me:
                del self._passes[channel]
                if not self._logs.get(channel, True):
                    del self._logs[channel]

    def _write(self, subscriptions, log: list[tuple[int, Payload, float | None]]) -> None:
        """Give each live subscription what it lacks of ``log``: one write per socket."""
        target = log[-1][0]
        last_sent, payload, several, coalesced = -1, None, False, 0
        for sub in subscriptions:
            if sub.buffer is not None:
                continue  # in its handshake (it was given these in its buffer) or gone
            sent = sub.sent
            if sent >= target:
                continue
            if sent != last_sent:
                last_sent, payload = sent, _slice(log, sent)
                several = payload.count > 1
            sub.sent = target
            sub.conn.write_payload(payload)
            if several:
                coalesced += 1
        self.stats.coalesced_writes += coalesced

    def _catch_up(self, sub: Subscription) -> None:
        log = self._logs.get(sub.channel)
        if log:
            self._write((sub,), log)

    def _flush(self, channel: str) -> None:
        """Write every accepted publication of ``channel`` now (before a reset)."""
        log = self._logs.get(channel)
        if not log:
            return
        subs = self.subscriptions.get(channel)
        if subs:
            self._write(list(subs.values()), log)
        self._delivered(log)
        log.clear()

    def _delivered(self, log: list[tuple[int, Payload, float | None]]) -> None:
        now = time.time()
        for _offset, _payload, published_at in log:
            if published_at is not None:
                self.stats.observe_latency(now - published_at)

    def reset_channel(self, channel: str) -> None:
        """Tell local subscribers their stream has a gap the history cannot fill. What was
        accepted before goes out first; offsets start again after it."""
        self._flush(channel)
        text = p.build_recovered(channel, False)
        for sub in list(self.subscriptions.get(channel, {}).values()):
            sub.sent = 0
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


def _slice(log: list[tuple[int, Payload, float | None]], sent: int) -> Payload:
    """What follows offset ``sent`` in ``log`` (sorted by offset), as one payload."""
    i = len(log) - 1
    while i > 0 and log[i - 1][0] > sent:
        i -= 1
    if i == len(log) - 1:
        return log[i][1]
    return PayloadBatch([entry[1] for entry in log[i:]])


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
