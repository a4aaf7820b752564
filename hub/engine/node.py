"""The node: one per server process, the engine's facade (``get_node``).

It owns a ``Hub`` (connections, subscriptions, fan-out passes), a ``Broker`` (between
processes: the channel layer with Redis, direct calls in one process), a ``History`` and a
``Presence`` (the twins of ``hub.engine.memory`` / ``hub.engine.redis``; the node never asks
which). It adds what needs several of them: publishing (``hub.engine.publishing``: validate,
build the frame text once, ``Broker.publish``) and subscribing with recovery (register, join, ``subscribed``, replay,
``recovered``: PROTOCOL.md §5). It is the broker's handler: arrivals go straight to the hub.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from hub.socket import protocol as p
from hub.socket import session as s
from hub.engine import factory, repair
from hub.engine.contracts import (Broker, Client, ClientInfo, ClusterState, Connection, History,
                                  Presence, ProcessStats)
from hub.engine.errors import HubUnavailable, PublishError
from hub.engine.housekeeping import run_housekeeping
from hub.engine.hub import FANOUT_CHUNK, Hub, Subscription
from hub.engine.names import group_name  # noqa: F401  (re-exported: tests, older imports)
from hub.engine.publishing import Publisher
from hub.engine.stats import NodeStats

logger = logging.getLogger("hub.engine")


class Node:
    def __init__(self, *, history: History, presence: Presence, broker: Broker,
                 server_name: str, history_size_for: Callable[[str], int | None],
                 timings: dict[str, float] | None = None,
                 report: Callable[[Node], Any] | None = None,
                 fanout_chunk: int = FANOUT_CHUNK) -> None:
        self.history = history
        self.presence = presence
        self.broker = broker
        self.server_name = server_name
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.stats = NodeStats()
        self.publisher = Publisher(broker, self.stats, history_size_for)  # the publish side
        self.hub = Hub(self.stats, fanout_chunk)
        # The hub's registries, shared (never rebound): sockets and figures read them here.
        self.connections = self.hub.connections
        self.subscriptions = self.hub.subscriptions
        # BrokerHandler: arrivals go to the hub without a frame of the node's in between.
        self.on_publication = self.hub.fan_out
        self.is_wanted = self.hub.has_subscribers
        self.on_left = self.hub.forget_channel
        # Set by the socket side (hub.socket.consumers): control messages (revocations) and the
        # periodic credential re-check, so the engine imports nothing of hub.socket.credentials.
        self.control_handler: Callable[[dict], None] | None = None
        self.recheck: Callable[[list], Any] | None = None
        self._timings = timings or {"heartbeat": 30.0, "connection_timeout": 60.0,
                                    "auth_timeout": 5.0}
        self._report = report
        self._started = False
        self._tasks: list[asyncio.Task] = []
        self._next_touch = 0.0  # see sweep_history

    # --- lifecycle ------------------------------------------------------------------------

    async def ensure_started(self) -> None:
        if self._started:
            return
        await self.broker.start(self)
        if not self._started:
            self._started = True
            if self._report is not None:
                self._tasks.append(asyncio.get_running_loop().create_task(
                    run_housekeeping(self, report=self._report, **self._timings),
                    name="hub-node-housekeeping"))

    def stop(self) -> None:
        self.broker.stop()
        for task in self._tasks:
            task.cancel()

    # --- BrokerHandler (the rest are the hub's, bound in __init__) ---------------------------

    def on_control(self, data: dict) -> None:
        if self.control_handler is not None:
            self.control_handler(data)

    async def on_joined(self, channel: str) -> None:
        if channel not in self.hub.join_marks:
            try:  # where this process came in: a catch-up never replays before it
                self.hub.join_marks[channel] = await self.history.top(channel)
            except HubUnavailable:
                pass

    # --- connections ----------------------------------------------------------------------

    def add_connection(self, conn: Connection) -> None:
        self.hub.add_connection(conn)

    def rename_connection(self, conn: Connection, old_id: str) -> None:
        self.hub.rename_connection(conn, old_id)

    def remove_connection(self, conn: Connection) -> None:
        for channel in self.hub.remove_connection(conn):
            self.broker.leave_soon(channel)

    # --- subscriptions --------------------------------------------------------------------

    async def subscribe(self, conn: Connection, channel: str) -> Subscription:
        """Register ``conn`` (buffering) and make sure this process receives ``channel``.
        The caller reads the history top next, then calls ``go_live``. HubUnavailable: the
        caller unsubscribes."""
        sub, new = self.hub.register(conn, channel)
        if new:
            if not self._started:
                await self.ensure_started()
            await self.broker.join(channel)
        return sub

    def go_live(self, sub: Subscription, after_offset: int) -> None:
        self.hub.go_live(sub, after_offset)

    async def unsubscribe(self, conn: Connection, channel: str) -> None:
        if self.hub.unregister(conn, channel):
            self.broker.leave_soon(channel)

    async def subscribe_live(self, conn: Connection, channels: Iterable[str]) -> None:
        """Implicit channels (``all``, ``user:<name>``): no ``subscribed`` frame, so no history
        top to read; everything buffered since registration is new to this socket (one Redis
        round trip less per connect). A channel Redis cannot join is skipped, logged."""
        for channel in channels:
            try:
                sub = await self.subscribe(conn, channel)
            except HubUnavailable:
                logger.warning("implicit channel %s not joined: Redis unavailable", channel)
                await self.unsubscribe(conn, channel)
                continue
            self.go_live(sub, 0)

    async def subscribe_with_recovery(self, conn: Client, effect: s.Subscribe) -> list[str]:
        """Carry out a ``subscribe`` frame: subscribe in request order, each answered
        ``subscribed``; recoveries run after every ``subscribed`` is out. Returns the channels
        not subscribed (backing store down: an error frame was written for each)."""
        recover, failed = [], []
        for item in effect.items:
            if isinstance(item, s.Reply):
                self.stats.count_error(item.error or p.INVALID_MESSAGE)
                conn.write_text(item.text)
                continue
            try:
                sub = await self.subscribe(conn, item.channel)
                top, epoch = await self.history.top(item.channel)
            except HubUnavailable as exc:
                failed.append(item.channel)
                await self.unsubscribe(conn, item.channel)
                conn.write_error(p.ProtocolError(
                    p.INTERNAL_ERROR, f"not subscribed: {exc}", channel=item.channel,
                    frame_id=effect.frame_id))
                continue
            conn.write_text(p.build_subscribed(item.channel, top, epoch, effect.frame_id))
            if item.since is None:
                self.go_live(sub, top)
            else:
                recover.append((sub, item, top, epoch))
        for sub, item, top, epoch in recover:
            await self._recover(conn, sub, item, top, epoch)
        return failed

    async def _recover(self, conn: Client, sub: Subscription, item: s.SubscribeItem, top: int,
                       epoch: str) -> None:
        """PROTOCOL.md §5: replay after ``since``, then ``recovered``; the live stream resumes
        after the last replayed offset, so nothing is sent twice or skipped."""
        publications, since = None, item.since or 0  # not None: a recovery was asked
        if item.epoch is None or item.epoch == epoch:
            try:
                publications, top, current_epoch = await self.history.since(item.channel, since)
            except HubUnavailable:
                current_epoch = None
            if current_epoch != epoch:
                publications = None
        if publications is None:
            logger.info("recovery of %s from offset %s not possible (top %s, epoch %s/%s)",
                        item.channel, item.since, top, item.epoch, epoch)
            conn.write_text(p.build_recovered(item.channel, False))
            self.go_live(sub, top)
            return
        for _offset, text in publications:
            conn.write_text(text)
        last = publications[-1][0] if publications else since
        conn.write_text(p.build_recovered(item.channel, True, len(publications)))
        self.go_live(sub, max(last, since))

    # --- publishing -----------------------------------------------------------------------

    async def publish(self, channel: str, event: str, data: Any) -> int:
        """``Publisher.publish`` (hub.engine.publishing): the offset, or PublishError /
        HubUnavailable."""
        return await self.publisher.publish(channel, event, data)

    async def publish_many(self, items: Iterable[tuple[str, str, Any]]) -> list[int | PublishError]:
        """``Publisher.publish_many``: one broker call, an outcome per item, in order."""
        return await self.publisher.publish_many(items)

    async def broadcast_control(self, data: dict) -> None:
        """Send ``data`` (small, msgpack-able) to every server process's node, this one
        included; each hands it to its ``control_handler``. For rare cluster-wide orders
        such as "close the sockets of this revoked session" (hub.socket.credentials); never for
        publications. Best effort: callers keep a slower guarantee."""
        await self.broker.send_control(data)

    # --- housekeeping ---------------------------------------------------------------------

    async def sweep_history(self) -> None:
        """Drop expired history (backends that expire nothing themselves) and keep the
        history of channels with local subscribers alive, at most every third of
        ``HUB_HISTORY_TTL`` (a subscribed but quiet channel should not restart its offsets
        under its subscribers, who would be told ``recovered: false`` for nothing)."""
        await self.history.sweep()
        now = time.monotonic()
        if now < self._next_touch:
            return
        self._next_touch = now + self.history.ttl_seconds / 3
        try:
            await self.history.touch(list(self.subscriptions))
        except HubUnavailable:
            self._next_touch = now  # Redis down: again at the next sweep

    async def refresh_groups(self) -> None:
        await self.broker.refresh()

    async def check_delivery(self) -> None:
        await repair.check_delivery(self.hub, self.broker, self.history)

    # --- figures ---------------------------------------------------------------------------

    def process_stats(self) -> ProcessStats:
        st = self.stats
        return ProcessStats(
            server=self.server_name, host=self.host, pid=self.pid, started_at=st.started_at,
            last_heartbeat=time.time(), active_connections=st.active_connections,
            total_connections=st.total_connections, messages_sent=st.messages_sent,
            messages_received=st.messages_received, errors=dict(st.errors),
            dropped_sends=st.dropped_sends, slow_consumer_closes=st.slow_consumer_closes,
            coalesced_writes=st.coalesced_writes, subscriptions=self.hub.subscription_counts(),
            publish_latency_sum=st.latency_sum, publish_latency_count=st.latency_count,
            publish_latency_buckets=tuple(st.latency_buckets), alive=True)

    def client_infos(self) -> list[ClientInfo]:
        conns: list[Any] = list(self.connections.values())  # consumers: state, pings too
        by_conn: dict[Any, list[str]] = {}
        for channel, subs in self.subscriptions.items():
            for conn in subs:
                by_conn.setdefault(conn, []).append(channel)
        return [ClientInfo(
            client_id=conn.client_id, user=conn.username,
            channels=tuple(sorted(by_conn.get(conn, ()))), state=conn.state,
            connected_at=conn.connected_at, last_ping=conn.last_ping, last_pong=conn.last_pong,
            server=self.server_name, metadata=_metadata(conn))
            for conn in conns]

    def local_state(self) -> ClusterState:
        return [self.process_stats()], self.client_infos()

    async def cluster_state(self) -> ClusterState:
        """Every process's figures and clients (this process alone without Redis)."""
        return await self.presence.cluster_state(self.local_state)

    def subscription_counts(self) -> dict[str, int]:
        return self.hub.subscription_counts()

    def per_channel_sizes(self) -> dict[str, int]:
        """Entries in every per-channel container of the hub and the broker: all back to
        their sizes once a channel has no local subscriber (tests/security/test_bounds.py)."""
        return {**self.hub.per_channel_sizes(),
                **{f"broker.{k}": v for k, v in self.broker.per_channel_sizes().items()}}

    def leaves_pending(self) -> bool:
        return self.broker.leaves_pending()


def _metadata(conn: Any) -> dict:
    scope = getattr(conn, "scope", {}) or {}
    client = scope.get("client") or (None, None)
    return {"remote_addr": client[0], "path": scope.get("path"),
            "user_agent": scope.get("user_agent")}  # hub.socket.admission.admitted_scope


_node: Node | None = None
_node_loop: asyncio.AbstractEventLoop | None = None


def get_node() -> Node:
    """This process's node, bound to the running event loop (built lazily from settings)."""
    global _node, _node_loop
    loop = asyncio.get_running_loop()
    if _node is None or _node_loop is not loop:
        _node, _node_loop = Node(**factory.node_parts()), loop
    return _node


def reset_node() -> None:
    """Tests: forget the node (a new event loop gets a new one)."""
    global _node, _node_loop
    if _node is not None:
        _node.stop()
    _node, _node_loop = None, None
