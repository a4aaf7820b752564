"""The memory and Redis backends pass one contract (history, presence, broker), against a
real private Redis for the Redis twin. The memory runs start no Redis (their params do not
request it), so they are in the fast tier; the Redis runs are e2e."""

from __future__ import annotations

import asyncio
import threading

import pytest
import redis as redis_sync

from channels_redis.pubsub import RedisPubSubChannelLayer

from hub.engine.contracts import ClientInfo, ProcessStats
from hub.engine.errors import HubUnavailable
from hub.engine.memory import MemoryBroker, MemoryHistory, MemoryPresence
from hub.engine.redis import RedisBroker, RedisHistory, redis_client
from hub.engine.redis_presence import RedisPresence


TTL = 100.0  # seconds, for the tests that do not wait for expiry


class Clock:
    """The memory backend's injected clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


TWINS = ["memory", pytest.param("redis", marks=pytest.mark.e2e)]


def private_redis(request):
    """The Redis twin's server, started only for its own params."""
    return request.getfixturevalue("redis_server")


@pytest.fixture(params=TWINS)
def backends(request):
    """(history, presence): the twins, history TTL = ``TTL``."""
    if request.param == "memory":
        return MemoryHistory(ttl_seconds=TTL, clock=Clock()), MemoryPresence()
    redis_server = private_redis(request)
    client = redis_client(redis_server.url)
    return (RedisHistory(client, prefix="t", ttl_seconds=TTL),
            RedisPresence(client, prefix="t", ttl_seconds=5))


@pytest.fixture(params=TWINS)
def expiring(request):
    """(history, advance): ``await advance(k)`` lets k TTLs pass. Memory: its clock moves.
    Redis: real time, with a TTL of 0.3 s (Redis' own clock decides what has expired)."""
    if request.param == "memory":
        clock = Clock()

        async def advance(ttls: float) -> None:
            clock.advance(ttls * TTL)

        return MemoryHistory(ttl_seconds=TTL, clock=clock), advance
    redis_server = private_redis(request)
    ttl = 0.3

    async def wait(ttls: float) -> None:
        await asyncio.sleep(ttls * ttl)  # under test: real Redis TTLs running out

    return RedisHistory(redis_client(redis_server.url), prefix="t", ttl_seconds=ttl), wait


async def append(history, channel, n, maxlen=3):
    return [await history.append(channel, maxlen, '{"o":', "}") for _ in range(n)]


def redis_keys(url: str, prefix: str = "t") -> dict[bytes, int]:
    """Every key under ``prefix`` with its PTTL (ms)."""
    check = redis_sync.Redis.from_url(url)
    return {key: check.pttl(key) for key in check.scan_iter(match=f"{prefix}:*")}


async def test_offsets_grow_by_one_and_frames_carry_them(backends):
    history, _ = backends
    results = await append(history, "jobs", 4)
    assert [offset for offset, _, _ in results] == [1, 2, 3, 4]
    assert [text for _, text, _ in results] == ['{"o":1}', '{"o":2}', '{"o":3}', '{"o":4}']
    top, epoch = await history.top("jobs")
    assert top == 4 and {e for _, _, e in results} == {epoch}
    assert await history.last_offsets(["jobs", "none"]) == {"jobs": 4, "none": 0}


async def test_each_channel_has_its_own_epoch_fixed_before_its_first_publication(backends):
    """A client that subscribed before the first publication (top 0) and recovers later
    with that epoch finds it unchanged."""
    history, _ = backends
    top, fresh = await history.top("fresh")
    assert top == 0 and fresh and (await history.top("fresh"))[1] == fresh
    assert (await history.since("fresh", 0)) == ([], 0, fresh)
    (_offset, _text, epoch), = await append(history, "fresh", 1)
    assert epoch == fresh == (await history.top("fresh"))[1]
    assert (await history.top("other"))[1] != fresh


async def test_reading_a_channel_makes_no_state_for_it(backends, request):
    """Subscribing reads the top (and ``since``): for made-up names that must cost nothing."""
    history, _ = backends
    for name in ("junk-1", "junk-2"):
        await history.top(name)
        assert (await history.since(name, 0))[0] == []
        assert (await history.since(name, 5))[0] is None
    assert await history.positions(["junk-1", "junk-2"]) == {"junk-1": (0, ""), "junk-2": (0, "")}
    if isinstance(history, MemoryHistory):
        assert history.channel_count() == 0
    else:
        url = private_redis(request).url
        assert [key for key in redis_keys(url) if b"junk" in key] == []


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


async def test_positions_read_without_creating(backends):
    history, _ = backends
    (_o, _t, epoch), = await append(history, "jobs", 1)
    assert await history.positions(["jobs", "nothing"]) == {"jobs": (1, epoch), "nothing": (0, "")}
    assert await history.positions(["nothing"]) == {"nothing": (0, "")}
    assert await history.positions([]) == {}


# --- HUB_HISTORY_TTL: history and offsets expire; a channel that comes back is a new epoch ---

async def test_a_quiet_channel_expires_and_comes_back_in_a_new_epoch(expiring):
    history, advance = expiring
    old = await append(history, "jobs", 3)
    old_epoch = old[0][2]
    await advance(1.2)
    assert await history.last_offsets(["jobs"]) == {"jobs": 0}
    top, epoch = await history.top("jobs")
    assert top == 0 and epoch != old_epoch
    # a client recovering from the old epoch: its offset is ahead of the new top
    assert (await history.since("jobs", 3))[0] is None
    new = await append(history, "jobs", 2)
    assert [(o, t) for o, t, _ in new] == [(1, '{"o":1}'), (2, '{"o":2}')]
    assert {e for _, _, e in new} == {epoch}  # the epoch announced before it came back
    # nothing of the old life is replayed in the new one
    items, top, now_epoch = await history.since("jobs", 0)
    assert [offset for offset, _ in items] == [1, 2] and now_epoch == epoch


async def test_a_channel_that_lived_less_than_a_ttl_still_comes_back_new(expiring):
    """Published once at the very end of a window, gone a TTL later: its next life begins
    in a later window whatever the timing, so its epoch differs."""
    history, advance = expiring
    for _ in range(3):
        (_o, _t, old), = await append(history, "blip", 1)
        await advance(1.1)
        (_o, _t, new), = await append(history, "blip", 1)
        assert new != old and _o == 1
        await advance(1.1)


async def test_memory_every_publication_restarts_the_ttl():
    clock = Clock()
    history = MemoryHistory(ttl_seconds=TTL, clock=clock)
    (_o, _t, epoch), = await append(history, "jobs", 1)
    for _ in range(3):
        clock.advance(TTL * 0.6)
        await append(history, "jobs", 1)
    clock.advance(TTL * 0.6)
    assert await history.top("jobs") == (4, epoch)
    assert [o for o, _ in (await history.since("jobs", 1))[0]] == [2, 3, 4]
    clock.advance(TTL * 0.5)  # 1.1 TTL since the last publication; reads kept nothing alive
    assert await history.top("jobs") != (4, epoch)


async def test_memory_touch_keeps_a_channel_alive_but_never_revives_one():
    clock = Clock()
    history = MemoryHistory(ttl_seconds=TTL, clock=clock)
    (_o, _t, epoch), = await append(history, "kept", 1)
    await append(history, "gone", 1)
    clock.advance(TTL * 0.9)
    await history.touch(["kept"])
    clock.advance(TTL * 0.9)
    assert await history.top("kept") == (1, epoch)
    assert await history.last_offsets(["gone"]) == {"gone": 0}
    await history.touch(["gone", "never"])
    assert await history.positions(["gone", "never"]) == {"gone": (0, ""), "never": (0, "")}
    assert history.channel_count() == 1


async def test_redis_publication_and_touch_restart_the_ttl_of_every_key(redis_server):
    history = RedisHistory(redis_client(redis_server.url), prefix="t", ttl_seconds=TTL)
    check = redis_sync.Redis.from_url(redis_server.url)
    await append(history, "jobs", 1)
    channel_keys = [b"t:meta:jobs", b"t:stream:jobs"]

    def shorten():
        for key in channel_keys:
            check.pexpire(key, 5000)

    shorten()
    await append(history, "jobs", 1)
    assert all(check.pttl(key) > 5000 for key in channel_keys)
    shorten()
    await history.touch(["jobs", "never"])
    assert all(check.pttl(key) > 5000 for key in channel_keys)
    assert not check.exists("t:meta:never", "t:stream:never")  # touch revives nothing


async def test_every_key_the_redis_backends_write_has_a_ttl(redis_server):
    """An audit of every key pattern: history (meta, stream, publication ids, the salt) and
    presence (process record, server set, client claims, per-user connections)."""
    client = redis_client(redis_server.url)
    history = RedisHistory(client, prefix="t", ttl_seconds=TTL)
    presence = RedisPresence(client, prefix="t", ttl_seconds=5)
    await append(history, "jobs", 2)
    await history.top("junk")
    await history.since("junk", 0)
    await presence.claim_client("c1", "carol@example.edu", "s1")
    await presence.add_user_connection("carol@example.edu", "c1")
    stats = ProcessStats(server="s1", host="h", pid=1, started_at=0.0, last_heartbeat=0.0,
                         active_connections=1, total_connections=1, messages_sent=0,
                         messages_received=0)
    await presence.publish_state(stats, lambda: [ClientInfo(
        client_id="c1", user="carol@example.edu", channels=(), state="connected",
        connected_at="2026-11-22T10:00:00Z", last_ping=None, last_pong=None, server="s1")])
    keys = redis_keys(redis_server.url)
    kinds = sorted({key.split(b":")[1] for key in keys})
    assert kinds == [b"client", b"meta", b"proc", b"pub", b"salt", b"servers", b"stream", b"user"]
    assert {key: left for key, left in keys.items() if left < 0} == {}
    assert all(left <= TTL * 1000 for left in keys.values())


async def test_redis_keys_really_expire(redis_server):
    """Real time, a short TTL: the keys of a channel and its publication id go by
    themselves, and the channel comes back in a new epoch."""
    history = RedisHistory(redis_client(redis_server.url), prefix="r", ttl_seconds=0.2)
    check = redis_sync.Redis.from_url(redis_server.url)
    _o, _t, epoch = await history.append("jobs", 10, "", "")
    assert sorted(k.split(b":")[1] for k in check.keys("r:*")) == [b"meta", b"pub", b"salt",
                                                                     b"stream"]
    assert all(0 < check.pttl(key) <= 200 for key in check.keys("r:*"))
    for _ in range(100):
        if not check.keys("r:*"):
            break
        await asyncio.sleep(0.05)
    assert check.keys("r:*") == []
    assert (await history.top("jobs"))[1] != epoch


async def test_memory_sweep_drops_expired_channels_oldest_first_within_its_limit():
    clock = Clock()
    history = MemoryHistory(ttl_seconds=TTL, clock=clock)
    for i in range(10):
        await append(history, f"junk{i}", 1)
    clock.advance(1)
    await append(history, "kept", 1)
    clock.advance(TTL - 0.5)  # the junk is expired, "kept" is not
    assert history.channel_count() == 11
    assert await history.sweep(limit=4) == 4
    assert await history.sweep() == 6
    assert history.channel_count() == 1 and await history.sweep() == 0
    assert (await history.top("kept"))[0] == 1


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
    probe = redis_sync.Redis.from_url(redis_server.url, socket_timeout=0.05, retry=None)
    deadline = asyncio.get_running_loop().time() + 5
    while True:  # until Redis is stalled (a ping goes unanswered), not for a fixed time
        try:
            probe.ping()
        except redis_sync.TimeoutError:
            break
        assert asyncio.get_running_loop().time() < deadline, "Redis never stalled"
        await asyncio.sleep(0.01)
    offset, text, _epoch = await history.append("jobs", 10, '{"o":', "}")
    stall.join()
    assert (offset, text) == (1, '{"o":1}')
    check = redis_sync.Redis.from_url(redis_server.url)
    assert int(check.hget("t:meta:jobs", "o")) == 1 and check.xlen("t:stream:jobs") == 1


async def test_reports_keep_claims_alive_and_a_silent_process_lets_them_go(redis_server):
    """publish_state refreshes every client's id claim and its user's connection entry
    (one Lua call); once a process stops reporting, both expire with its record."""
    # A TTL well above the gap between two reports: a loaded machine may stall this loop for
    # a few hundred ms, and a record lapsing in such a gap is not what is under test.
    presence = RedisPresence(redis_client(redis_server.url), prefix="p", ttl_seconds=1.0)
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
    for _ in range(11):  # 2.2 s: over twice the TTL, kept alive by the reports
        await presence.publish_state(stats, lambda: clients)
        await asyncio.sleep(0.2)
    assert not await presence.claim_client("c2", None, "s2")
    assert await presence.add_user_connection("alice", "c9") == 3  # c0, c1 and this one
    members = redis_sync.Redis.from_url(redis_server.url).zrange("p:user:alice", 0, -1)
    assert sorted(members) == [b"c0", b"c1", b"c9"]
    processes, listed = await presence.cluster_state(lambda: ([], []))
    assert [p.server for p in processes] == ["s1"]
    assert sorted(c.client_id for c in listed) == ["c0", "c1", "c2"]
    await presence.remove_user_connection("alice", "c9")
    await asyncio.sleep(1.3)  # under test: no more reports, the records' TTLs run out
    assert await presence.claim_client("c2", None, "s2")
    assert await presence.add_user_connection("alice", "c9") == 1
    assert await presence.cluster_state(lambda: ([], [])) == ([], [])


# --- the broker: one contract over MemoryBroker and RedisBroker ---------------------------

class Recorder:
    """A BrokerHandler that records what the broker hands over."""

    def __init__(self) -> None:
        self.publications: list[tuple[str, int, str, str]] = []
        self.controls: list[dict] = []
        self.joined: list[str] = []
        self.left: list[str] = []
        self.wanted: set[str] = set()

    def on_publication(self, channel, offset, text, published_at, epoch) -> None:
        self.publications.append((channel, offset, text, epoch))

    def on_control(self, data: dict) -> None:
        self.controls.append(data)

    async def on_joined(self, channel: str) -> None:
        self.joined.append(channel)

    def is_wanted(self, channel: str) -> bool:
        return channel in self.wanted

    def on_left(self, channel: str) -> None:
        self.left.append(channel)


async def until(condition, what: str) -> None:
    """Wait for ``condition()`` (Redis delivers on its own connection); bounded, not timed."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


@pytest.fixture(params=TWINS)
async def broker(request):
    """(broker, handler), started; the Redis twin on a private Redis and its own layer."""
    if request.param == "memory":
        made = MemoryBroker(MemoryHistory(ttl_seconds=TTL, clock=Clock()))
    else:
        url = private_redis(request).url
        layer = RedisPubSubChannelLayer(hosts=[{"address": url}], prefix="t.layer")
        made = RedisBroker(layer, RedisHistory(redis_client(url), prefix="t", ttl_seconds=TTL), "t")
    handler = Recorder()
    await made.start(handler)
    yield made, handler
    made.stop()
    if request.param == "redis":
        await made.layer.flush()


async def test_a_joined_channel_gets_every_publication_in_offset_order(broker):
    made, handler = broker
    handler.wanted.add("jobs")
    await made.join("jobs")
    await made.join("jobs")
    assert handler.joined == ["jobs"]  # on_joined once per join, not per call
    offsets = [await made.publish("jobs", 10, '{"o":', "}", 0.0) for _ in range(5)]
    assert offsets == [1, 2, 3, 4, 5]
    await until(lambda: len(handler.publications) == 5, "five publications")
    assert [(c, o, t) for c, o, t, _e in handler.publications] == [
        ("jobs", n, f'{{"o":{n}}}') for n in range(1, 6)]
    assert len({e for *_rest, e in handler.publications}) == 1


async def test_a_channel_not_joined_or_left_gets_nothing(broker):
    made, handler = broker
    handler.wanted.add("kept")
    for name in ("kept", "gone"):
        await made.join(name)
    made.leave_soon("kept")  # wanted again meanwhile: stays
    made.leave_soon("gone")
    await until(lambda: not made.leaves_pending() and handler.left == ["gone"], "the leave")
    await made.publish("never-joined", 10, "", "", 0.0)
    await made.publish("gone", 10, "", "", 0.0)
    await made.publish("kept", 10, "k", "", 0.0)
    await until(lambda: handler.publications, "the publication to the kept channel")
    # Publications arrive in publish order: a wrongly delivered one (never-joined, gone) would
    # already be here, before kept's.
    assert [(c, t) for c, _o, t, _e in handler.publications] == [("kept", "k1")]
    made.leave_soon("kept")
    handler.wanted.clear()
    await until(lambda: not made.leaves_pending(), "the last leave")
    assert set(made.per_channel_sizes().values()) == {0}


async def test_control_messages_reach_this_process_and_probes_come_back(broker):
    made, handler = broker
    await made.send_control({"revoke": "user", "v": "1"})
    await until(lambda: handler.controls, "the control message")
    assert handler.controls == [{"revoke": "user", "v": "1"}]
    assert await made.probe() is True


async def test_redis_outage_is_hub_unavailable_from_the_broker(redis_server):
    """Only the backend translates Redis errors: the caller sees HubUnavailable("redis")."""
    layer = RedisPubSubChannelLayer(hosts=[{"address": redis_server.url}], prefix="t.layer")
    made = RedisBroker(layer, RedisHistory(redis_client(redis_server.url), prefix="t"), "t")
    await made.start(Recorder())
    redis_server.stop()
    with pytest.raises(HubUnavailable) as joined:
        await made.join("jobs")
    with pytest.raises(HubUnavailable) as published:
        await made.publish("jobs", 10, "", "", 0.0)
    assert joined.value.service == published.value.service == "redis"
    made.stop()


async def test_cluster_state_memory_is_this_process_redis_every_reporter(backends):
    _, presence = backends
    stats = ProcessStats(server="s1", host="h", pid=1, started_at=0.0, last_heartbeat=0.0,
                         active_connections=0, total_connections=0, messages_sent=0,
                         messages_received=0)
    asked = []

    def clients():
        asked.append(1)
        return []

    await presence.publish_state(stats, clients)
    local = ([stats], [])
    state = await presence.cluster_state(lambda: local)
    assert [p.server for p in state[0]] == ["s1"] and state[1] == []
    # the memory twin never builds the client list it would not share
    assert asked == ([] if isinstance(presence, MemoryPresence) else [1])


# --- publishing a list: History.append_many and Broker.publish_many (issue 12) --------------

def evalsha_calls(url: str) -> int:
    """Script calls Redis has served since the last CONFIG RESETSTAT (INFO commandstats)."""
    stats = redis_sync.Redis.from_url(url).info("commandstats")
    return sum(stats.get(name, {}).get("calls", 0) for name in ("cmdstat_evalsha", "cmdstat_eval"))


def reset_stats(url: str) -> None:
    redis_sync.Redis.from_url(url).config_resetstat()


async def test_append_many_orders_each_channels_offsets_and_keeps_its_history(backends):
    """Interleaved channels: each channel's offsets follow the list without gaps, the frames
    carry them, the history keeps the last ``maxlen`` and a later append continues."""
    history, _ = backends
    await append(history, "jobs", 2)  # jobs already at 2; "fresh" has no state yet
    _top, fresh_epoch = await history.top("fresh")
    items = [("jobs" if n % 3 else "fresh", 3, f'{{"n":{n},"o":', "}") for n in range(10)]
    appended = await history.append_many(items)
    jobs = [a for item, a in zip(items, appended) if item[0] == "jobs"]
    fresh = [a for item, a in zip(items, appended) if item[0] == "fresh"]
    assert [o for o, _t, _e in jobs] == [3, 4, 5, 6, 7, 8] and [o for o, _t, _e in fresh] == [1, 2, 3, 4]
    assert [t for _o, t, _e in fresh] == ['{"n":0,"o":1}', '{"n":3,"o":2}', '{"n":6,"o":3}',
                                          '{"n":9,"o":4}']
    assert {e for _o, _t, e in fresh} == {fresh_epoch}  # the epoch announced before
    assert {e for _o, _t, e in jobs} == {(await history.top("jobs"))[1]}
    items_jobs, top, _ = await history.since("jobs", 5)
    assert top == 8 and [t for _o, t in items_jobs] == ['{"n":5,"o":6}', '{"n":7,"o":7}',
                                                        '{"n":8,"o":8}']
    assert (await history.since("jobs", 4))[0] is None  # trimmed to maxlen 3
    assert await history.append_many([]) == []
    (offset, _t, _e), = await append(history, "jobs", 1)
    assert offset == 9


async def test_append_many_with_history_zero_keeps_offsets_only(backends):
    history, _ = backends
    appended = await history.append_many([("ticks", 0, "", "")] * 3)
    assert [o for o, _t, _e in appended] == [1, 2, 3]
    assert (await history.top("ticks"))[0] == 3 and (await history.since("ticks", 1))[0] is None


async def test_append_many_restarts_the_ttl_and_an_expired_channel_comes_back_new(expiring):
    history, advance = expiring
    (_o, _t, old_epoch), = await history.append_many([("jobs", 10, "", "")])
    for _ in range(2):
        await advance(0.6)
        await history.append_many([("jobs", 10, "", ""), ("other", 10, "", "")])
    assert (await history.top("jobs"))[0] == 3  # 1.2 TTL after the first: kept by the others
    await advance(1.3)
    assert await history.last_offsets(["jobs", "other"]) == {"jobs": 0, "other": 0}
    appended = await history.append_many([("jobs", 10, "", "")] * 2)
    assert [o for o, _t, _e in appended] == [1, 2] and appended[0][2] != old_epoch
    assert [o for o, _t in (await history.since("jobs", 0))[0]] == [1, 2]


async def test_redis_append_many_is_one_script_call_and_every_key_has_the_ttl(redis_server):
    history = RedisHistory(redis_client(redis_server.url), prefix="t", ttl_seconds=TTL)
    await history.append("warm", 1, "", "")  # loads the script (EVALSHA after NOSCRIPT)
    reset_stats(redis_server.url)
    items = [(f"ch{n % 3}", 5, "", "") for n in range(300)]
    appended = await history.append_many(items)
    assert evalsha_calls(redis_server.url) == 1
    assert [o for o, _t, _e in appended[:6]] == [1, 1, 1, 2, 2, 2] and appended[-1][0] == 100
    check = redis_sync.Redis.from_url(redis_server.url)
    assert [check.xlen(f"t:stream:ch{n}") for n in range(3)] == [5, 5, 5]
    keys = redis_keys(redis_server.url)
    assert {key: left for key, left in keys.items() if left < 0} == {}
    assert all(0 < left <= TTL * 1000 for left in keys.values())


async def test_a_stalled_redis_neither_duplicates_nor_misreports_a_list(redis_server):
    """The retry of a list call that did run returns its offsets (per channel) and epochs."""
    history = RedisHistory(redis_client(redis_server.url), prefix="t")
    await history.append("jobs", 10, "", "")
    stall = threading.Thread(target=lambda: redis_sync.Redis.from_url(redis_server.url)
                             .execute_command("DEBUG", "SLEEP", "1.2"))
    stall.start()
    await asyncio.sleep(0.1)
    appended = await history.append_many([("jobs", 10, "j", ""), ("new", 10, "n", ""),
                                          ("jobs", 10, "j", "")])
    stall.join()
    assert [(o, t) for o, t, _e in appended] == [(2, "j2"), (1, "n1"), (3, "j3")]
    assert appended[1][2] == (await history.top("new"))[1]
    check = redis_sync.Redis.from_url(redis_server.url)
    assert int(check.hget("t:meta:jobs", "o")) == 3 and check.xlen("t:stream:jobs") == 3
    assert int(check.hget("t:meta:new", "o")) == 1


async def test_publish_many_delivers_a_joined_channel_in_offset_order(broker):
    made, handler = broker
    handler.wanted.add("jobs")
    await made.join("jobs")
    offsets = await made.publish_many([("jobs", 10, "j", ""), ("elsewhere", 10, "e", ""),
                                       ("jobs", 10, "j", "")], 0.0)
    assert offsets == [1, 1, 2]
    offsets = await made.publish_many([("jobs", 10, "j", "")] * 3, 0.0)
    assert offsets == [3, 4, 5]
    await until(lambda: len(handler.publications) == 5, "five publications")
    assert [(c, o, t) for c, o, t, _e in handler.publications] == [
        ("jobs", n, f"j{n}") for n in range(1, 6)]  # nothing of the channel not joined


async def test_concurrent_publishes_in_one_turn_keep_their_call_order(broker, request):
    """Twenty publishes started in one loop turn (as concurrent REST requests are): offsets
    in call order; with Redis they travel together, in one script call."""
    made, handler = broker
    handler.wanted.add("jobs")
    await made.join("jobs")
    url = private_redis(request).url if isinstance(made, RedisBroker) else None
    if url:
        await made.publish("jobs", 10, "warm", "", 0.0)
        reset_stats(url)
    first = 2 if url else 1
    calls = [made.publish("jobs", 10, f"p{n}:", "", 0.0) if n % 2 else
             made.publish_many([("jobs", 10, f"p{n}:", "")], 0.0) for n in range(20)]
    results = await asyncio.gather(*calls)
    offsets = [r if isinstance(r, int) else r[0] for r in results]
    assert offsets == list(range(first, first + 20))
    if url:
        assert evalsha_calls(url) == 1 and made.coalescer.sends == 2  # warm-up + these 20
    await until(lambda: len(handler.publications) == first + 19, "every publication")
    assert [t for _c, _o, t, _e in handler.publications[first - 1:]] == [
        f"p{n}:{first + n}" for n in range(20)]
