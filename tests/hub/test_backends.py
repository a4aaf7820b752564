"""The memory and Redis backends pass one contract (history and presence), against a real
private Redis for the Redis twin."""

from __future__ import annotations

import asyncio
import threading

import pytest
import redis as redis_sync

from hub.engine.memory import MemoryHistory, MemoryPresence
from hub.engine.redis import RedisHistory, RedisPresence, redis_client


@pytest.fixture(params=["memory", "redis"])
def backends(request, redis_server):
    if request.param == "memory":
        return MemoryHistory(), MemoryPresence()
    client = redis_client(redis_server.url)
    return (RedisHistory(client, prefix="t"),
            RedisPresence(client, prefix="t", ttl_seconds=5))


async def append(history, channel, n, maxlen=3):
    return [await history.append(channel, maxlen, '{"o":', "}") for _ in range(n)]


async def test_offsets_grow_by_one_and_frames_carry_them(backends):
    history, _ = backends
    results = await append(history, "jobs", 4)
    assert [offset for offset, _ in results] == [1, 2, 3, 4]
    assert [text for _, text in results] == ['{"o":1}', '{"o":2}', '{"o":3}', '{"o":4}']
    top, epoch = await history.top("jobs")
    assert top == 4 and epoch == (await history.top("other"))[1]
    assert await history.last_offsets(["jobs", "none"]) == {"jobs": 4, "none": 0}


async def test_since_replays_what_the_history_reaches(backends):
    history, _ = backends
    await append(history, "jobs", 5, maxlen=3)  # keeps 3, 4, 5
    items, top, _ = await history.since("jobs", 2)
    assert [offset for offset, _ in items] == [3, 4, 5] and top == 5
    assert (await history.since("jobs", 5))[0] == []
    assert (await history.since("jobs", 1))[0] is None  # 2 was trimmed away
    assert (await history.since("jobs", 9))[0] is None  # ahead of the top: another epoch


async def test_history_zero_keeps_offsets_but_no_frames(backends):
    history, _ = backends
    await append(history, "ticks", 3, maxlen=0)
    assert (await history.top("ticks"))[0] == 3
    assert (await history.since("ticks", 2))[0] is None
    assert (await history.since("ticks", 3))[0] == []


async def test_client_ids_are_unique_until_released(backends):
    _, presence = backends
    assert await presence.claim_client("c1", None, "s1") is True
    assert await presence.claim_client("c1", None, "s2") is False
    await presence.release_client("c1", None)
    assert await presence.claim_client("c1", None, "s2") is True


async def test_user_connection_counts(backends):
    _, presence = backends
    assert await presence.add_user_connection("alice", "a") == 1
    assert await presence.add_user_connection("alice", "b") == 2
    await presence.remove_user_connection("alice", "a")
    assert await presence.add_user_connection("alice", "c") == 2


async def test_a_stalled_redis_neither_duplicates_nor_misreports(redis_server):
    """Redis busy for 1.2 s (longer than one attempt): the publish is retried with the same
    publication id, so it happens once and is reported as done."""
    history = RedisHistory(redis_client(redis_server.url), prefix="t")
    stall = threading.Thread(target=lambda: redis_sync.Redis.from_url(redis_server.url)
                             .execute_command("DEBUG", "SLEEP", "1.2"))
    stall.start()
    await asyncio.sleep(0.1)
    offset, text = await history.append("jobs", 10, '{"o":', "}")
    stall.join()
    assert (offset, text) == (1, '{"o":1}')
    check = redis_sync.Redis.from_url(redis_server.url)
    assert int(check.get("t:offset:jobs")) == 1 and check.xlen("t:stream:jobs") == 1


async def test_reports_keep_claims_alive_and_a_silent_process_lets_them_go(redis_server):
    """publish_state refreshes every client's id claim and its user's connection entry
    (one Lua call); once a process stops reporting, both expire with its record."""
    from hub.engine.base import ClientInfo, ProcessStats

    presence = RedisPresence(redis_client(redis_server.url), prefix="p", ttl_seconds=0.4)
    clients = [ClientInfo(client_id=f"c{i}", user="alice" if i < 2 else None, channels=(),
                          state="connected", connected_at="2026-11-22T10:00:00Z",
                          last_ping=None, last_pong=None, server="s1") for i in range(3)]
    for client in clients:
        assert await presence.claim_client(client.client_id, client.user, "s1")
        if client.user:
            await presence.add_user_connection(client.user, client.client_id)
    stats = ProcessStats(server="s1", host="h", pid=1, started_at=0.0, last_heartbeat=0.0,
                         active_connections=3, total_connections=3, messages_sent=0,
                         messages_received=0)
    for _ in range(8):  # 0.8 s: twice the TTL, kept alive by the reports
        await presence.publish_state(stats, clients)
        await asyncio.sleep(0.1)
    assert not await presence.claim_client("c2", None, "s2")
    assert await presence.add_user_connection("alice", "c9") == 3  # c0, c1 and this one
    members = redis_sync.Redis.from_url(redis_server.url).zrange("p:user:alice", 0, -1)
    assert sorted(members) == [b"c0", b"c1", b"c9"]
    processes, listed = await presence.cluster_state()
    assert [p.server for p in processes] == ["s1"]
    assert sorted(c.client_id for c in listed) == ["c0", "c1", "c2"]
    await presence.remove_user_connection("alice", "c9")
    await asyncio.sleep(0.6)  # no more reports
    assert await presence.claim_client("c2", None, "s2")
    assert await presence.add_user_connection("alice", "c9") == 1
    assert await presence.cluster_state() == ([], [])
