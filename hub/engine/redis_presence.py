"""The Redis twin of ``MemoryPresence``: client ids and per-user connections claimed
cluster-wide, every process's figures and clients shared (``hub.engine.contracts.Presence``).
Redis errors become ``HubUnavailable`` (``guarded``)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, cast

from redis import asyncio as aioredis
from redis.typing import EncodableT

from hub.engine.contracts import ClientInfo, ClusterState, ProcessStats
from hub.engine.errors import HubUnavailable
from hub.engine.redis import guarded

# A process's presence report in one call. KEYS: its record, the server set, its n client
# claims, then one per-user key per client with a user; ARGV: TTL ms, the record, the
# server's name, the claims' expiry (unix s), n, then the client id for each user key.
# (Was a pipeline of one PEXPIRE/ZADD per client: at 5,000 sockets redis-py spent ~370 ms
# building and parsing 10,000 commands on the event loop, stalling fan-out up to 160 ms.)
_PRESENCE_LUA = """
local ttl = tonumber(ARGV[1])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ttl)
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


class RedisPresence:
    """Each process keeps its figures and its clients in Redis under keys that expire
    ``ttl_seconds`` after its last report: a process killed with SIGKILL drops out of every
    count within that time. Client ids and per-user connections are claimed cluster-wide."""

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

    async def publish_state(self, stats: ProcessStats,
                            list_clients: Callable[[], list[ClientInfo]]) -> None:
        """Refresh this process's figures, its clients and their claims (TTL).

        The body (every client of the process: ~1.5 MB at 5,000 sockets) is encoded in a
        worker thread: on the event loop it held fan-out up for ~100 ms every report
        (py-spy, docs/benchmarks.md); in a thread the loop keeps running between the GIL's
        5 ms switches. ``stats`` and ``clients`` are frozen snapshots, safe to share."""
        clients = list_clients()
        expiry = time.time() + self.ttl_ms / 1000
        body = await asyncio.to_thread(_state_body, stats, clients)
        with_user = [(c.client_id, c.user) for c in clients if c.user]
        keys = [self._proc_key(stats.server), self._servers_key,
                *[self._client_key(c.client_id) for c in clients],
                *[self._user_key(user) for _client_id, user in with_user]]
        args: list[EncodableT] = [self.ttl_ms, body, stats.server, repr(expiry), len(clients),
                                  *[client_id for client_id, _user in with_user]]
        await guarded(self._report(keys=keys, args=args))

    async def cluster_state(self, local: Callable[[], ClusterState] | None = None) -> ClusterState:
        """Every reporting process (this one by its last report: ``local`` is not needed)."""
        # The client is made without decode_responses: members are bytes.
        members = cast("set[bytes]", await guarded(self._redis.smembers(self._servers_key)))
        servers = sorted(s.decode() for s in members)
        if not servers:
            return [], []
        bodies = await guarded(self._redis.mget([self._proc_key(s) for s in servers]))
        processes: list[ProcessStats] = []
        clients: list[ClientInfo] = []
        gone: list[str] = []
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
