"""The broker over a Channels layer: the ONLY code that calls the channel layer.

One inbox per process (``new_channel``); the inbox joins a hub channel's group when the
channel's first local subscriber arrives and leaves with the last, so a publication crosses
the layer once per *process*, never per subscriber. Arrivals go to a ``BrokerHandler`` (the
node wires the hub in). Used with Redis (``hub.engine.redis.RedisBroker`` adds the atomic
publish); ``hub.engine.memory.MemoryBroker`` is its twin for one process, with no layer.

Channels-layer errors are turned into ``HubUnavailable(service)`` here, by the exception
types the backend declares (``OUTAGES``), never by guessing from module names.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from hub.engine.contracts import NO_HANDLER, Appendable, BrokerHandler
from hub.engine.errors import HubUnavailable
from hub.engine.names import group_name

logger = logging.getLogger("hub.engine")

# A subscribe waits for the join (and then its barrier): this is the subscribe path's own
# budget, not CALL_DEADLINE_SECONDS: under a connect storm the event loop itself is slow, and
# a join that fails is a subscribe refused to a client that Redis would have served.
JOIN_TIMEOUT_SECONDS = 2.0
BARRIER_WAIT_SECONDS = 0.7
PROBE_WAIT_SECONDS = 1.0
LISTENER = "hub-node-listener"


class LayerBroker:
    """``Broker`` over a Channels layer (any: tests use ``InMemoryChannelLayer``)."""

    OUTAGES: tuple[type[BaseException], ...] = (asyncio.TimeoutError, OSError, ConnectionError)

    def __init__(self, layer: Any, history: Any, prefix: str, service: str = "channel layer") -> None:
        self.layer = layer
        self.history = history
        self.prefix = prefix
        self.service = service
        self.inbox: str | None = None
        self.delivery_suspect = False  # a delivery probe failed (hub.engine.repair)
        self._handler: BrokerHandler = NO_HANDLER
        self._joined: set[str] = set()
        self._group_locks: dict[str, asyncio.Lock] = {}
        self._barriers: dict[str, asyncio.Future] = {}
        self._started = asyncio.Lock()
        self._listener: asyncio.Task | None = None

    def _outage(self, exc: BaseException) -> HubUnavailable:
        return HubUnavailable(self.service, type(exc).__name__)

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self, handler: BrokerHandler) -> None:
        self._handler = handler
        if self.inbox is not None:
            return
        async with self._started:
            if self.inbox is None:
                self.inbox = await self.layer.new_channel(prefix=f"{self.prefix}.node.")
                await self._join_control()
                self._listener = asyncio.get_running_loop().create_task(
                    self._listen(), name=LISTENER)

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()

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
                    self._handler.on_publication(message["c"], message["o"], message["t"],
                                                 message.get("ts"), message.get("e"))
                elif kind == "hub.control":
                    self._handler.on_control(message.get("d") or {})
                elif kind == "hub.barrier":
                    arrived = self._barriers.get(message.get("m"))
                    if arrived is not None and not arrived.done():
                        arrived.set_result(None)
            except Exception:
                logger.exception("fan-out failed for %r", message.get("c"))

    # --- publishing and control -----------------------------------------------------------

    async def publish(self, channel: str, maxlen: int, head: str, tail: str,
                      published_at: float) -> int:
        """History first, then the group. (Redis overrides this with one atomic script.)"""
        offset, text, epoch = await self.history.append(channel, maxlen, head, tail)
        try:
            await self.layer.group_send(group_name(self.prefix, channel), {
                "type": "hub.fanout", "c": channel, "o": offset, "t": text, "ts": published_at,
                "e": epoch})
        except self.OUTAGES as exc:
            raise self._outage(exc) from None
        return offset

    async def publish_many(self, items: list[Appendable], published_at: float) -> list[int]:
        """One ``publish`` after the other (Redis overrides this with one script call)."""
        return [await self.publish(channel, maxlen, head, tail, published_at)
                for channel, maxlen, head, tail in items]

    async def send_control(self, data: dict) -> None:
        """Send ``data`` (small, msgpack-able) to every server process's node, this one
        included, through a process-wide group every inbox joins at start-up. Works without
        a started broker (a process that only serves HTTP can send). Best effort."""
        await self.layer.group_send(f"{self.prefix}.control", {"type": "hub.control", "d": data})

    async def _join_control(self) -> None:
        try:
            await asyncio.wait_for(self.layer.group_add(f"{self.prefix}.control", self.inbox),
                                   JOIN_TIMEOUT_SECONDS)
        except Exception:
            logger.warning("control group not joined (Redis down?); retried hourly",
                           exc_info=True)

    # --- membership -----------------------------------------------------------------------

    def _lock(self, channel: str) -> asyncio.Lock:
        lock = self._group_locks.get(channel)
        if lock is None:
            lock = self._group_locks[channel] = asyncio.Lock()
        return lock

    async def join(self, channel: str) -> None:
        if channel in self._joined:
            return
        await self.start(self._handler)
        async with self._lock(channel):
            if channel not in self._joined:
                try:
                    await asyncio.wait_for(
                        self.layer.group_add(group_name(self.prefix, channel), self.inbox),
                        JOIN_TIMEOUT_SECONDS)
                except self.OUTAGES as exc:
                    raise self._outage(exc) from None
                await self._barrier(channel)
                self._joined.add(channel)
                await self._handler.on_joined(channel)

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
                try:
                    await self.layer.group_send(group_name(self.prefix, channel),
                                                {"type": "hub.barrier", "m": marker})
                except self.OUTAGES as exc:
                    raise self._outage(exc) from None
                try:
                    await asyncio.wait_for(asyncio.shield(arrived), BARRIER_WAIT_SECONDS)
                    return
                except asyncio.TimeoutError:
                    continue
            raise HubUnavailable(self.service, "subscription not confirmed")
        finally:
            self._barriers.pop(marker, None)

    def leave_soon(self, channel: str) -> None:
        asyncio.get_running_loop().create_task(self._leave(channel))

    async def _leave(self, channel: str) -> None:
        """The last local subscriber left: leave the group and have the handler forget the
        channel, so per-channel state shrinks back with its subscribers (a client
        subscribing to made-up names must not grow the process; tests/security/
        test_bounds.py). Also when the join never completed."""
        async with self._lock(channel):
            if self._handler.is_wanted(channel):
                return
            self._handler.on_left(channel)
            if channel in self._joined:
                self._joined.discard(channel)
                try:
                    await self.layer.group_discard(group_name(self.prefix, channel), self.inbox)
                except Exception:
                    logger.exception("group_discard failed for %r", channel)
            if not self._handler.is_wanted(channel):
                self._group_locks.pop(channel, None)

    async def refresh(self) -> None:
        """Re-add the inbox to every joined group: channels-redis expires group membership
        after ``group_expiry`` (24 h); a socket open longer must keep receiving."""
        await self._join_control()
        for channel in list(self._joined):
            try:
                await self.layer.group_add(group_name(self.prefix, channel), self.inbox)
            except Exception:
                logger.exception("group refresh failed for %r", channel)

    # --- delivery self-check (hub.engine.repair) --------------------------------------------

    async def probe(self) -> bool:
        """A marker sent to this process's own inbox through the layer comes back. True
        when nothing is started yet (nothing to lose)."""
        if self.inbox is None:
            return True
        marker = secrets.token_hex(8)
        arrived = self._barriers[marker] = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(self.layer.send(self.inbox, {"type": "hub.barrier", "m": marker}),
                                   PROBE_WAIT_SECONDS)
            await asyncio.wait_for(arrived, PROBE_WAIT_SECONDS)
            return True
        except Exception:
            return False
        finally:
            self._barriers.pop(marker, None)

    async def reconnect(self) -> None:
        """A new layer connection and listener; every channel must be joined again."""
        try:
            await asyncio.wait_for(self.layer.flush(), PROBE_WAIT_SECONDS * 2)
        except Exception:
            logger.warning("layer flush failed", exc_info=True)
        if self._listener is not None:
            self._listener.cancel()
        self._listener = asyncio.get_running_loop().create_task(self._listen(), name=LISTENER)
        self._joined.clear()

    def per_channel_sizes(self) -> dict[str, int]:
        return {"joined": len(self._joined), "group_locks": len(self._group_locks),
                "barriers": len(self._barriers)}

    def leaves_pending(self) -> bool:
        """A leave of a channel without subscribers is still running (tests wait)."""
        return any(not self._handler.is_wanted(name) for name in self._group_locks)
