"""Redis backends (with ``REDIS_URL``): history in Redis Streams, cluster-wide presence.

Publishing is one Lua script: bump the channel's offset, ``XADD`` the frame to the channel's
stream (``MAXLEN`` = the channel's history) and ``PUBLISH`` it to the channel-layer group, in
one atomic step. Why not ``XADD`` then ``layer.group_send``: two processes publishing on one
channel could then deliver offsets 6 before 5, and a client that reconnects with ``since=6``
would silently miss 5. Inside the script Redis orders delivery exactly as it orders offsets.
The message is the channels-redis pub/sub layer's own wire form (msgpack, via Redis' built-in
cmsgpack) on the layer's own group channel, so membership and receiving stay channels-redis'.

The epoch lives in one key; a Redis that lost its data (restart without persistence) has no
epoch key, so the next publication or subscribe makes a new one and clients recovering from
the old epoch are told ``recovered: false``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import asdict
from typing import Any, Awaitable, Callable, TypeVar

from redis import asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from hub.engine.base import ClientInfo, ProcessStats
from hub.engine.errors import HubUnavailable

# Generous for reads on the connect/subscribe path: under a connect storm the event loop
# itself is the bottleneck, and a timeout there fails a subscribe that Redis would serve.
# Publishing has its own, tighter budget below (REST answers within 2 s).
OPERATION_TIMEOUT_SECONDS = 2.5
PUBLISH_ATTEMPTS = 2
PUBLISH_ATTEMPT_SECONDS = 0.85  # two attempts stay under REST's 2 s promise
T = TypeVar("T")

_PUBLISH_LUA = """
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  redis.call('SET', KEYS[3], ARGV[4])
  epoch = ARGV[4]
end
local done = redis.call('GET', KEYS[4])
if done then
  return {tonumber(done), '', epoch}
end
local offset = redis.call('INCR', KEYS[2])
local text = ARGV[2] .. offset .. ARGV[3]
local maxlen = tonumber(ARGV[1])
if maxlen > 0 then
  redis.call('XADD', KEYS[1], 'MAXLEN', maxlen, offset .. '-0', 't', text)
end
if ARGV[5] ~= '' then
  local message = cmsgpack.pack({type = 'hub.fanout', c = ARGV[6], o = offset, t = text,
                                 ts = tonumber(ARGV[7]), e = epoch})
  redis.call('PUBLISH', ARGV[5], message)
end
redis.call('SET', KEYS[4], offset, 'EX', 60)
return {offset, text, epoch}
"""

_TOP_LUA = """
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  redis.call('SET', KEYS[2], ARGV[1])
  epoch = ARGV[1]
end
local offset = tonumber(redis.call('GET', KEYS[1]) or '0')
return {offset, epoch}
"""


# A process's presence report in one call. KEYS: its record, the server set, its n client
# claims, then one per-user key per client with a user; ARGV: TTL ms, the record, the
# server's name, the claims' expiry (unix s), n, then the client id for each user key.
# (Was a pipeline of one PEXPIRE/ZADD per client: at 5,000 sockets redis-py spent ~370 ms
# building and parsing 10,000 commands on the event loop, stalling fan-out up to 160 ms.)
_PRESENCE_LUA = """
local ttl = tonumber(ARGV[1])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
redis.call('SADD', KEYS[2], ARGV[3])
local n = tonumber(ARGV[5])
for i = 3, 2 + n do
  redis.call('PEXPIRE', KEYS[i], ttl)
end
for j = 3 + n, #KEYS do
  redis.call('ZADD', KEYS[j], ARGV[4], ARGV[3 + j - n])
  redis.call('PEXPIRE', KEYS[j], ttl)
end
return 1
"""


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
        return await asyncio.wait_for(operation, timeout)
    except HubUnavailable:
        raise
    except (asyncio.TimeoutError, OSError, aioredis.RedisError) as exc:
        raise HubUnavailable("redis", type(exc).__name__) from None


class RedisHistory:
    fans_out = True  # append(..., fanout=True) also delivers to the layer group

    def __init__(self, client: aioredis.Redis, prefix: str,
                 group_channel_for: Callable[[str], str] | None = None) -> None:
        self._redis = client
        self._prefix = prefix
        self._group_channel_for = group_channel_for
        self._publish = client.register_script(_PUBLISH_LUA)
        self._top = client.register_script(_TOP_LUA)
        self.epoch_key = f"{prefix}:epoch"

    def _keys(self, channel: str) -> list[str]:
        return [f"{self._prefix}:stream:{channel}", f"{self._prefix}:offset:{channel}",
                self.epoch_key]

    async def append(self, channel: str, maxlen: int, head: str, tail: str,
                     fanout: bool = False) -> tuple[int, str]:
        """Assign the next offset, keep the frame, and (``fanout``) deliver it to every
        process subscribed to the channel's group, atomically."""
        group_channel = self._group_channel_for(channel) if fanout and self._group_channel_for else ""
        # A publication id makes the script idempotent: a call that timed out may still have
        # run, so the one retry (and redis-py's own) returns the same offset instead of
        # publishing twice, and a slow Redis is not reported as a failure that did happen.
        publication_key = f"{self._prefix}:pub:{secrets.token_hex(12)}"
        args = [maxlen, head, tail, secrets.token_hex(4), group_channel, channel, repr(time.time())]
        for attempt in range(PUBLISH_ATTEMPTS):
            try:
                offset, text, _epoch = await guarded(
                    self._publish(keys=[*self._keys(channel), publication_key], args=args),
                    PUBLISH_ATTEMPT_SECONDS)
                break
            except HubUnavailable as exc:
                if exc.detail != "TimeoutError" or attempt == PUBLISH_ATTEMPTS - 1:
                    raise
        if not text:  # the retry found it done: rebuild the same frame text
            text = f"{head}{int(offset)}{tail}"
        return int(offset), text.decode() if isinstance(text, bytes) else text

    async def top(self, channel: str) -> tuple[int, str]:
        keys = self._keys(channel)
        offset, epoch = await guarded(self._top(keys=[keys[1], self.epoch_key],
                                                args=[secrets.token_hex(4)]))
        return int(offset), epoch.decode() if isinstance(epoch, bytes) else epoch

    async def since(self, channel: str, offset: int) -> tuple[list[tuple[int, str]] | None, int, str]:
        top, epoch = await self.top(channel)
        if offset > top:
            return None, top, epoch
        if offset == top:
            return [], top, epoch
        entries = await guarded(self._redis.xrange(self._keys(channel)[0], min=f"({offset}-0",
                                                   max="+"))
        items = [(int(entry_id.split(b"-")[0]), fields[b"t"].decode()) for entry_id, fields in entries]
        items = [item for item in items if item[0] <= top]
        if not items or items[0][0] != offset + 1:
            return None, top, epoch
        return items, top, epoch

    async def last_offsets(self, channels: list[str]) -> dict[str, int]:
        if not channels:
            return {}
        values = await guarded(self._redis.mget([self._keys(name)[1] for name in channels]))
        return {name: int(value or 0) for name, value in zip(channels, values)}


class RedisPresence:
    """Each process keeps its figures and its clients in Redis under keys that expire
    ``ttl_seconds`` after its last report: a process killed with SIGKILL drops out of every
    count within that time. Client ids and per-user connections are claimed cluster-wide."""

    shares_clients = True

    def __init__(self, client: aioredis.Redis, prefix: str, ttl_seconds: float) -> None:
        self._redis = client
        self._prefix = prefix
        self.ttl_ms = int(ttl_seconds * 1000)
        self._servers_key = f"{prefix}:servers"
        self._report = client.register_script(_PRESENCE_LUA)

    def _client_key(self, client_id: str) -> str:
        return f"{self._prefix}:client:{client_id}"

    def _user_key(self, user: str) -> str:
        return f"{self._prefix}:user:{user}"

    def _proc_key(self, server: str) -> str:
        return f"{self._prefix}:proc:{server}"

    async def claim_client(self, client_id: str, user: str | None, server: str) -> bool:
        try:
            return bool(await guarded(self._redis.set(self._client_key(client_id), server,
                                                      nx=True, px=self.ttl_ms)))
        except HubUnavailable:
            return True  # Redis down: uniqueness is checked in this process only

    async def release_client(self, client_id: str, user: str | None) -> None:
        await guarded(self._redis.delete(self._client_key(client_id)))

    async def add_user_connection(self, user: str, client_id: str) -> int:
        now = time.time()
        key = self._user_key(user)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(key, "-inf", now)
                pipe.zadd(key, {client_id: now + self.ttl_ms / 1000})
                pipe.pexpire(key, self.ttl_ms)
                pipe.zcard(key)
                results = await guarded(pipe.execute())
        except HubUnavailable:
            return 1  # Redis down: the per-user limit cannot be checked cluster-wide
        return int(results[-1])

    async def remove_user_connection(self, user: str, client_id: str) -> None:
        await guarded(self._redis.zrem(self._user_key(user), client_id))

    async def publish_state(self, stats: ProcessStats, clients: list[ClientInfo]) -> None:
        """Refresh this process's figures, its clients and their claims (TTL).

        The body (every client of the process: ~1.5 MB at 5,000 sockets) is encoded in a
        worker thread: on the event loop it held fan-out up for ~100 ms every report
        (py-spy, docs/benchmarks.md); in a thread the loop keeps running between the GIL's
        5 ms switches. ``stats`` and ``clients`` are frozen snapshots, safe to share."""
        expiry = time.time() + self.ttl_ms / 1000
        body = await asyncio.to_thread(_state_body, stats, clients)
        with_user = [c for c in clients if c.user]
        keys = [self._proc_key(stats.server), self._servers_key,
                *[self._client_key(c.client_id) for c in clients],
                *[self._user_key(c.user) for c in with_user]]
        args = [self.ttl_ms, body, stats.server, repr(expiry), len(clients),
                *[c.client_id for c in with_user]]
        await guarded(self._report(keys=keys, args=args))

    async def cluster_state(self) -> tuple[list[ProcessStats], list[ClientInfo]]:
        servers = sorted(s.decode() for s in await guarded(self._redis.smembers(self._servers_key)))
        if not servers:
            return [], []
        bodies = await guarded(self._redis.mget([self._proc_key(s) for s in servers]))
        processes, clients, gone = [], [], []
        for server, body in zip(servers, bodies):
            if body is None:
                gone.append(server)
                continue
            record = json.loads(body)
            processes.append(_process_stats(record["stats"]))
            clients.extend(_client_info(c) for c in record["clients"])
        if gone:
            await guarded(self._redis.srem(self._servers_key, *gone))
        return processes, clients


def _state_body(stats: ProcessStats, clients: list[ClientInfo]) -> str:
    return json.dumps({"stats": asdict(stats), "clients": [asdict(c) for c in clients]})


def _client_info(raw: dict[str, Any]) -> ClientInfo:
    raw = dict(raw)
    raw["channels"] = tuple(raw.get("channels", ()))
    return ClientInfo(**raw)


def _process_stats(raw: dict[str, Any]) -> ProcessStats:
    raw = dict(raw)
    raw["publish_latency_buckets"] = tuple(raw.get("publish_latency_buckets", ()))
    return ProcessStats(**raw)
