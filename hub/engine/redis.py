"""Redis backends (with ``REDIS_URL``): history in Redis Streams, cluster-wide presence, and
the broker (``RedisBroker``: the channel-layer broker with an atomic publish). Twins of
``hub.engine.memory`` behind ``hub.engine.contracts``. Every Redis error is turned into
``HubUnavailable("redis")`` here (``guarded``, ``RedisBroker.OUTAGES``), nowhere else.

Publishing is one Lua script (``hub.engine.redis_lua``; one call for a whole list): bump
the channel's offset, ``XADD`` the frame to the channel's
stream (``MAXLEN`` = the channel's history) and ``PUBLISH`` it to the channel-layer group, in
one atomic step. Why not ``XADD`` then ``layer.group_send``: two processes publishing on one
channel could then deliver offsets 6 before 5, and a client that reconnects with ``since=6``
would silently miss 5. Inside the script Redis orders delivery exactly as it orders offsets.
The message is the channels-redis pub/sub layer's own wire form (msgpack, via Redis' built-in
cmsgpack) on the layer's own group channel, so membership and receiving stay channels-redis'.

Each channel has one hash ``<prefix>:meta:<channel>`` (``o``: offset, ``e``: epoch) beside its
stream ``<prefix>:stream:<channel>``, both made by its first publication and given a TTL
(``HUB_HISTORY_TTL``) in the same script, so a channel without publications for that long is
gone and its next life has a new epoch (clients recovering from the old one are told
``recovered: false``); reading a channel writes nothing for it (see ``_EPOCH_LUA``). A Redis
that lost its data (restart without persistence) is the same case. The hub's Redis must not
evict keys on its own (``maxmemory-policy noeviction``, Redis' default): a meta hash evicted
early could let the channel's next life reuse its epoch. Every other key the hub writes has
a TTL too (idempotency ids, presence), so client-chosen channel names cannot grow Redis
without bound (tests/security/test_bounds.py audits every key with ``SCAN``).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import msgpack
from redis import asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError
from redis.typing import EncodableT

from hub.engine.broker import LayerBroker
from hub.engine.coalesce import Coalescer
from hub.engine.contracts import CALL_DEADLINE_SECONDS, Appendable
from hub.engine.errors import HubUnavailable
from hub.engine.names import group_name
from hub.engine.redis_lua import PUBLISH_LUA, SINCE_LUA, pubsub_message_lua  # noqa: F401 (re-exported)

# Generous for reads on the connect/subscribe path: under a connect storm the event loop
# itself is the bottleneck, and a timeout there fails a subscribe that Redis would serve.
# Publishing has its own, tighter budget below.
OPERATION_TIMEOUT_SECONDS = 2.5
PUBLISH_ATTEMPTS = 2
# Both attempts fit in the caller's deadline (REST waits CALL_DEADLINE_SECONDS): a retry
# still running when the caller gives up would report a failure for a publication made.
PUBLISH_ATTEMPT_SECONDS = CALL_DEADLINE_SECONDS / PUBLISH_ATTEMPTS
DEFAULT_HISTORY_TTL = 86400.0
TOUCH_CHUNK = 500  # channels per pipeline when keeping subscribed channels' history alive
T = TypeVar("T")


def pubsub_group_channel(layer: Any, group: str) -> str:
    """The Redis pub/sub channel ``RedisPubSubChannelLayer`` uses for ``group`` (a private
    method of channels_redis: checked by the same canary test)."""
    return layer._get_layer()._get_group_channel_name(group)


def redis_client(url: str, max_connections: int = 64) -> aioredis.Redis:
    """A client for real load: a *blocking* pool (a burst of connects waits briefly for a
    free connection instead of failing, as redis-py's default pool does past its size),
    keepalive plus health checks (redis-py 8 otherwise loses idle connections:
    channels_redis#422), and short timeouts so an outage fails fast instead of hanging."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=OPERATION_TIMEOUT_SECONDS,
        socket_connect_timeout=0.5, socket_timeout=OPERATION_TIMEOUT_SECONDS,
        socket_keepalive=True, health_check_interval=10,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=1))
    return aioredis.Redis(connection_pool=pool)


async def guarded(operation: Awaitable[T], timeout: float = OPERATION_TIMEOUT_SECONDS) -> T:
    """Run a Redis call; any failure or timeout becomes HubUnavailable("redis")."""
    try:
        async with asyncio.timeout(timeout):  # a timer handle; wait_for made a task per call
            return await operation
    except HubUnavailable:
        raise
    except (TimeoutError, OSError, aioredis.RedisError) as exc:
        raise HubUnavailable("redis", type(exc).__name__) from None


class RedisHistory:
    def __init__(self, client: aioredis.Redis, prefix: str,
                 ttl_seconds: float = DEFAULT_HISTORY_TTL) -> None:
        self._redis = client
        self._prefix = prefix
        self._publish = client.register_script(PUBLISH_LUA)
        self._since = client.register_script(SINCE_LUA)
        self.ttl_seconds = ttl_seconds
        self._ttl_ms = max(1, int(ttl_seconds * 1000))
        self._salt_key = f"{prefix}:salt"

    def _keys(self, channel: str) -> list[str]:
        return [f"{self._prefix}:stream:{channel}", f"{self._prefix}:meta:{channel}"]

    async def append(self, channel: str, maxlen: int, head: str, tail: str,
                     deliver_to: str = "") -> tuple[int, str, str]:
        """Assign the next offset, keep the frame, and (``deliver_to``: a pub/sub channel)
        deliver it there, atomically; returns (offset, text, epoch)."""
        appended = await self.append_many([(channel, maxlen, head, tail)],
                                          (lambda _channel: deliver_to) if deliver_to else None)
        return appended[0]

    async def append_many(self, items: list[Appendable],
                          deliver_to: Callable[[str], str] | None = None
                          ) -> list[tuple[int, str, str]]:
        """``append`` of every item in order, in ONE script call (one round trip), atomic:
        each channel's offsets follow the list without gaps; ``deliver_to(channel)`` names
        the pub/sub channel its publications are PUBLISHed to in the same step ('': none;
        no ``deliver_to``: delivered nowhere). Returns (offset, text, epoch) per item."""
        if not items:
            return []
        index: dict[str, int] = {}
        heads: dict[str, int] = {}
        keys: list[str] = [self._salt_key, f"{self._prefix}:pub:{secrets.token_hex(12)}"]
        channel_args: list[EncodableT] = []
        flat: list[int | str] = []
        for channel, maxlen, head, tail in items:
            c = index.get(channel)
            if c is None:
                c = index[channel] = len(index) + 1
                keys += self._keys(channel)
                channel_args += [channel, deliver_to(channel) if deliver_to else "", maxlen]
            h = heads.get(head)
            if h is None:
                h = heads[head] = len(heads) + 1
            flat += (c, h, tail)
        # A publication id makes the script idempotent: a call that timed out may still have
        # run, so the one retry (and redis-py's own) returns the same offsets instead of
        # publishing twice, and a slow Redis is not reported as a failure that did happen.
        args = [self._ttl_ms, secrets.token_hex(8), repr(time.time()), len(index),
                *channel_args, msgpack.packb([list(heads), flat])]
        for attempt in range(PUBLISH_ATTEMPTS):
            try:
                firsts, epochs = await guarded(self._publish(keys=keys, args=args),
                                               PUBLISH_ATTEMPT_SECONDS)
                break
            except HubUnavailable as exc:
                if exc.detail != "TimeoutError" or attempt == PUBLISH_ATTEMPTS - 1:
                    raise
        # the texts are rebuilt here rather than carried back: the same bytes Redis kept
        offsets = [int(first) for first in firsts]
        epoch_texts = [_text(epoch) for epoch in epochs]
        appended = []
        for channel, _maxlen, head, tail in items:
            c = index[channel] - 1
            offset = offsets[c]
            offsets[c] = offset + 1
            appended.append((offset, f"{head}{offset}{tail}", epoch_texts[c]))
        return appended

    async def ping(self) -> None:
        """Raise HubUnavailable unless Redis answers (writes nothing)."""
        await guarded(self._redis.ping())

    async def sweep(self) -> int:
        return 0  # every key has a TTL: Redis expires them itself

    async def _run_since(self, channel: str, since: int) -> list:
        stream, meta = self._keys(channel)
        return await guarded(self._since(keys=[meta, stream, self._salt_key],
                                         args=[secrets.token_hex(8), self._ttl_ms, channel, since]))

    async def top(self, channel: str) -> tuple[int, str]:
        offset, epoch = await self._run_since(channel, -1)
        return int(offset), _text(epoch)

    async def since(self, channel: str, offset: int) -> tuple[list[tuple[int, str]] | None, int, str]:
        result = await self._run_since(channel, offset)
        top, epoch = int(result[0]), _text(result[1])
        if offset > top:
            return None, top, epoch
        if offset == top:
            return [], top, epoch
        items = [(int(entry_id.split(b"-")[0]), _text(_field(fields, b"t")))
                 for entry_id, fields in result[2]]
        items = [item for item in items if item[0] <= top]
        if not items or items[0][0] != offset + 1:
            return None, top, epoch
        return items, top, epoch

    async def positions(self, channels: Iterable[str]) -> dict[str, tuple[int, str]]:
        """(offset, epoch) per channel, read only: (0, "") for a channel with no state."""
        names = list(channels)
        if not names:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hmget(self._keys(name)[1], "o", "e")
            values = await guarded(pipe.execute())
        return {name: (int(o or 0), _text(e) if e else "") for name, (o, e) in zip(names, values)}

    async def last_offsets(self, channels: list[str]) -> dict[str, int]:
        return {name: pos[0] for name, pos in (await self.positions(channels)).items()}

    async def touch(self, channels: Iterable[str]) -> None:
        """Keep these channels' history another TTL (they have subscribers on this process).
        PEXPIRE on a key that is gone does nothing, so this never revives an expired one."""
        names = list(channels)
        for start in range(0, len(names), TOUCH_CHUNK):
            async with self._redis.pipeline(transaction=False) as pipe:
                for name in names[start:start + TOUCH_CHUNK]:
                    for key in self._keys(name):
                        pipe.pexpire(key, self._ttl_ms)
                await guarded(pipe.execute())


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _field(fields: Any, name: bytes) -> Any:
    """A stream entry's field: Lua gives a flat [name, value, ...] list."""
    if isinstance(fields, dict):
        return fields[name]
    return fields[fields.index(name) + 1]


class RedisBroker(LayerBroker):
    """The channel-layer broker with Redis' atomic publish: offset, history and delivery in
    one script (see the module docstring: why not ``XADD`` then ``group_send``).

    Publications made during one event-loop turn (concurrent REST requests, the monitor, a
    list body) go to Redis together: one script call for all of them (``Coalescer``), in
    the order they were made, instead of one round trip each."""

    OUTAGES = (*LayerBroker.OUTAGES, RedisError)
    MAX_ITEMS_PER_CALL = 1000  # one script call blocks Redis while it runs: ~2-3 ms at this size

    def __init__(self, layer: Any, history: RedisHistory, prefix: str) -> None:
        super().__init__(layer, history, prefix, service="redis")
        self.coalescer: Coalescer[Appendable, int] = Coalescer(self._send, self.MAX_ITEMS_PER_CALL)
        self._group_channels: dict[str, str] = {}

    async def publish(self, channel: str, maxlen: int, head: str, tail: str,
                      published_at: float) -> int:
        return (await self.coalescer.submit([(channel, maxlen, head, tail)]))[0]

    async def publish_many(self, items: list[Appendable], published_at: float) -> list[int]:
        return await self.coalescer.submit(items)

    async def _send(self, items: list[Appendable]) -> list[int]:
        appended = await self.history.append_many(items, self._group_channel)
        return [offset for offset, _text, _epoch in appended]

    def _group_channel(self, channel: str) -> str:
        found = self._group_channels.get(channel)
        if found is None:
            found = pubsub_group_channel(self.layer, group_name(self.prefix, channel))
            if len(self._group_channels) >= 10_000:
                self._group_channels.clear()  # bounded: client-chosen names
            self._group_channels[channel] = found
        return found
