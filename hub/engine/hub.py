"""The hub: this process's connections, their subscriptions, and the fan-out passes.

No I/O but socket writes (``Connection.write_*``, which never block): it neither talks to
the channel layer (``hub.engine.broker``) nor reads the history (``hub.engine.node``), so
everything here is synchronous except the fan-out pass task, and testable with fakes.

Fan-out (why it is cut this way): Channels as the docs teach it puts every consumer in a
layer group, so a publication costs one layer message, one task wake-up, one JSON encode and
(since Channels 4.2) one thread hop *per subscriber*. Here a publication's frame text is built
once (by the publisher), reaches each process once (the broker), and the hub writes that same
text to each local subscriber's socket without awaiting per subscriber.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from hub.socket import protocol as p
from hub.engine.contracts import Connection
from hub.engine.stats import NodeStats
from hub.engine.transport import Payload, PayloadBatch

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

Log = list[tuple[int, Payload, float | None]]  # (offset, payload, published at), by offset
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
            # Never _DROPPED: a subscription leaves ``_buffering`` (the only caller) before that.
            buffer.append((offset, payload))  # type: ignore[union-attr]
        else:
            self.conn.request_close(p.CLOSE_SLOW_CONSUMER)


class Hub:
    """Registry and fan-out. ``register`` puts a subscription in its handshake (buffering);
    ``go_live`` ends it. ``unregister``/``remove_connection`` return True for a channel that
    lost its last local subscriber (the node then has the broker leave it)."""

    def __init__(self, stats: NodeStats, fanout_chunk: int = FANOUT_CHUNK) -> None:
        self.stats = stats
        self.fanout_chunk = fanout_chunk
        self.connections: dict[str, Connection] = {}
        self.subscriptions: dict[str, dict[Connection, Subscription]] = {}
        # Per channel: subscriptions still in their subscribe/recovery handshake, the
        # publications accepted but not yet written to every live subscriber, and the task
        # writing them (see ``fan_out``).
        self._buffering: dict[str, set[Subscription]] = {}
        self._logs: dict[str, Log] = {}
        self._passes: dict[str, asyncio.Task] = {}
        self.join_marks: dict[str, tuple[int, str]] = {}  # channel -> (top, epoch) at join
        self.last_offsets: dict[str, int] = {}  # per channel, last offset fanned out here
        self.channel_epochs: dict[str, str] = {}

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
        """Forget ``conn``; returns the channels that lost their last local subscriber."""
        if self.connections.get(conn.client_id) is conn:
            del self.connections[conn.client_id]
            self.stats.connection_closed()
        channels = [name for name, subs in self.subscriptions.items() if conn in subs]
        return [name for name in channels if self._drop_subscription(conn, name)]

    # --- subscriptions --------------------------------------------------------------------

    def register(self, conn: Connection, channel: str) -> tuple[Subscription, bool]:
        """(the subscription, in its handshake; whether it is new). A live subscription
        subscribed again gets what it was due first, then buffers like a new one."""
        subs = self.subscriptions.setdefault(channel, {})
        existing = subs.get(conn)
        if existing is not None:
            if existing.buffer is None:
                self._catch_up(existing)  # what it was due as a live subscriber comes first
                existing.buffer = []
                self._buffering.setdefault(channel, set()).add(existing)
            return existing, False
        sub = subs[conn] = Subscription(conn, channel)
        self._buffering.setdefault(channel, set()).add(sub)
        return sub, True

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

    def unregister(self, conn: Connection, channel: str) -> bool:
        """End ``conn``'s subscription; True if ``channel`` has no local subscriber left."""
        sub = self.subscriptions.get(channel, {}).get(conn)
        if sub is not None and sub.buffer is None:
            self._catch_up(sub)  # published before the unsubscribe: still this client's
        return self._drop_subscription(conn, channel)

    def has_subscribers(self, channel: str) -> bool:
        return channel in self.subscriptions

    def _drop_subscription(self, conn: Connection, channel: str) -> bool:
        subs = self.subscriptions.get(channel)
        if subs is None:
            return False
        sub = subs.pop(conn, None)
        if sub is None:
            return False
        self._stop_buffering(sub)
        sub.buffer = _DROPPED
        if subs:
            return False
        del self.subscriptions[channel]
        return True

    def _stop_buffering(self, sub: Subscription) -> None:
        waiting = self._buffering.get(sub.channel)
        if waiting is not None:
            waiting.discard(sub)
            if not waiting:
                del self._buffering[sub.channel]

    def forget_channel(self, channel: str) -> None:
        """The broker left ``channel``: per-channel state shrinks back with its subscribers
        (a client subscribing to made-up names must not grow the process)."""
        self.last_offsets.pop(channel, None)
        self.join_marks.pop(channel, None)
        self.channel_epochs.pop(channel, None)

    # --- fan-out --------------------------------------------------------------------------

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

    def _write(self, subscriptions: Iterable[Subscription], log: Log) -> None:
        """Give each live subscription what it lacks of ``log``: one write per socket."""
        target = log[-1][0]
        last_sent, several, coalesced = -1, False, 0
        payload: Payload  # set at the first write: offsets are >= 0, so sent != -1 there
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

    def _delivered(self, log: Log) -> None:
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

    # --- for the delivery repair (hub.engine.repair) ----------------------------------------

    def known_epoch(self, channel: str) -> str | None:
        """The epoch this process last delivered in (or joined in), None if neither."""
        mark = self.join_marks.get(channel)
        return self.channel_epochs.get(channel) or (mark[1] if mark is not None else None)

    def resume_offset(self, channel: str) -> int:
        """Where a catch-up of ``channel`` starts: after the last offset delivered here, or
        after the top at join when nothing was delivered yet (never replays before it)."""
        start = self.last_offsets.get(channel, 0)
        mark = self.join_marks.get(channel)
        if channel not in self.channel_epochs and mark is not None:
            start = max(start, mark[0])
        return start

    def restart_stream(self, channel: str, epoch: str, offset: int) -> None:
        """A gap no history fills: ``recovered: false``, then continue after ``offset``."""
        self.reset_channel(channel)
        self.channel_epochs[channel] = epoch
        self.last_offsets[channel] = offset

    # --- figures ---------------------------------------------------------------------------

    def subscription_counts(self) -> dict[str, int]:
        return {name: len(subs) for name, subs in self.subscriptions.items()}

    def idle(self) -> bool:
        """No fan-out pass is running (tests wait for this)."""
        return not self._passes

    def per_channel_sizes(self) -> dict[str, int]:
        """Entries per per-channel container (tests audit that leaving frees them all)."""
        return {"subscriptions": len(self.subscriptions), "buffering": len(self._buffering),
                "logs": len(self._logs), "passes": len(self._passes),
                "join_marks": len(self.join_marks), "last_offsets": len(self.last_offsets),
                "channel_epochs": len(self.channel_epochs)}


def _slice(log: Log, sent: int) -> Payload:
    """What follows offset ``sent`` in ``log`` (sorted by offset), as one payload."""
    i = len(log) - 1
    while i > 0 and log[i - 1][0] > sent:
        i -= 1
    if i == len(log) - 1:
        return log[i][1]
    return PayloadBatch([entry[1] for entry in log[i:]])
