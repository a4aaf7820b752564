"""The node's fan-out in-process: chunked passes, coalescing when behind, exactly once.

Connections are recording fakes (what the node asks of a consumer); the backends are the
memory twins (``MemoryBroker``: no channel layer), except where the join path through a
channel layer is the point (``LayerBroker`` over Channels' in-memory layer). Publications
are fed to the hub as the broker hands them over (``node.hub.fan_out``). One recorded write
= one socket write.
"""

from __future__ import annotations

import asyncio
import json
import random

import pytest
from channels.layers import InMemoryChannelLayer

from hub.engine.broker import LayerBroker
from hub.engine.errors import HubUnavailable
from hub.engine.memory import MemoryBroker, MemoryHistory, MemoryPresence
from hub.engine.node import Node

CHANNEL = "jobs"


class FakeConn:
    def __init__(self, name: str) -> None:
        self.client_id = name
        self.username = None
        self.writes: list[list[str]] = []
        self.closed: int | None = None

    def write_payload(self, payload) -> bool:
        self.writes.append([part.text for part in payload.parts()])
        return True

    def write_text(self, text: str) -> bool:
        self.writes.append([text])
        return True

    def request_close(self, code: int) -> None:
        self.closed = code

    def frames(self) -> list[str]:
        return [text for write in self.writes for text in write]


def pub(offset: int, epoch: str = "e1") -> str:
    return json.dumps({"type": "tick", "channel": CHANNEL, "offset": offset, "epoch": epoch})


def offsets(conn: FakeConn) -> list[int]:
    return [json.loads(text)["offset"] for text in conn.frames() if '"offset"' in text]


def make_node(history: MemoryHistory, broker=None) -> Node:
    return Node(history=history, presence=MemoryPresence(),
                broker=broker or MemoryBroker(history), server_name="test",
                history_size_for=lambda channel: 100)


@pytest.fixture
async def node():
    n = make_node(MemoryHistory(epoch_for=lambda channel, window: "e1"))
    await n.ensure_started()
    yield n
    n.stop()


async def live(node: Node, count: int, channel: str = CHANNEL) -> list[FakeConn]:
    conns = [FakeConn(f"c{i}") for i in range(count)]
    for conn in conns:
        node.add_connection(conn)
        node.go_live(await node.subscribe(conn, channel), 0)
    return conns


async def settle(node: Node) -> None:
    for _ in range(1000):
        if node.hub.idle():
            return
        await asyncio.sleep(0)
    raise AssertionError("fan-out did not finish")


async def test_publications_arriving_during_a_fanout_go_out_together(node):
    node.hub.fanout_chunk = 10
    conns = await live(node, 50)
    node.hub.fan_out(CHANNEL, 1, pub(1), None, "e1")
    await asyncio.sleep(0)  # the pass writes its first chunk, then lets the loop run
    assert [len(c.writes) for c in conns[:10]] == [1] * 10
    assert all(c.writes == [] for c in conns[10:])
    node.hub.fan_out(CHANNEL, 2, pub(2), None, "e1")  # arrive while the pass is under way
    node.hub.fan_out(CHANNEL, 3, pub(3), None, "e1")
    await settle(node)
    for conn in conns:
        assert offsets(conn) == [1, 2, 3]  # each exactly once, in order
    # the rest got all three in one write; the first chunk got 1 alone, then 2 and 3 together
    assert all(c.writes == [[pub(1), pub(2), pub(3)]] for c in conns[10:])
    assert all(c.writes == [[pub(1)], [pub(2), pub(3)]] for c in conns[:10])
    assert node.stats.coalesced_writes == 50


async def test_a_process_that_keeps_up_writes_each_publication_alone(node):
    conns = await live(node, 20)
    for offset in (1, 2, 3):
        node.hub.fan_out(CHANNEL, offset, pub(offset), None, "e1")
        await settle(node)
    assert all(c.writes == [[pub(1)], [pub(2)], [pub(3)]] for c in conns)
    assert node.stats.coalesced_writes == 0


async def test_replayed_offsets_are_not_sent_again(node):
    (conn,) = await live(node, 1)
    for offset in (1, 2, 2, 1, 3):
        node.hub.fan_out(CHANNEL, offset, pub(offset), None, "e1")
    await settle(node)
    assert offsets(conn) == [1, 2, 3]


async def test_live_resubscribe_gets_what_was_published_before_it_first(node):
    (conn,) = await live(node, 1)
    node.hub.fan_out(CHANNEL, 1, pub(1), None, "e1")  # accepted, not yet written
    sub = await node.subscribe(conn, CHANNEL)  # the same socket subscribes again
    assert offsets(conn) == [1]
    conn.write_text("subscribed")
    node.hub.fan_out(CHANNEL, 2, pub(2), None, "e1")  # during its handshake: buffered
    node.go_live(sub, 1)
    await settle(node)
    assert conn.frames() == [pub(1), "subscribed", pub(2)]


async def test_unsubscribe_delivers_what_was_published_before_it(node):
    a, b = await live(node, 2)
    node.hub.fan_out(CHANNEL, 1, pub(1), None, "e1")
    await node.unsubscribe(a, CHANNEL)
    assert offsets(a) == [1]
    node.hub.fan_out(CHANNEL, 2, pub(2), None, "e1")
    await settle(node)
    assert offsets(a) == [1]
    assert offsets(b) == [1, 2]


async def test_closed_connection_gets_nothing_more(node):
    node.hub.fanout_chunk = 1
    a, b = await live(node, 2)
    node.hub.fan_out(CHANNEL, 1, pub(1), None, "e1")
    await asyncio.sleep(0)  # `a` has it, `b` not yet
    node.remove_connection(b)
    await settle(node)
    assert offsets(a) == [1] and offsets(b) == []


async def test_subscriber_in_handshake_mid_pass_gets_each_publication_once(node):
    node.hub.fanout_chunk = 5
    conns = await live(node, 20)
    node.hub.fan_out(CHANNEL, 1, pub(1), None, "e1")
    await asyncio.sleep(0)
    late = FakeConn("late")
    node.add_connection(late)
    sub = await node.subscribe(late, CHANNEL)  # history top is 1 now
    node.hub.fan_out(CHANNEL, 2, pub(2), None, "e1")
    node.go_live(sub, 1)
    node.hub.fan_out(CHANNEL, 3, pub(3), None, "e1")
    await settle(node)
    assert offsets(late) == [2, 3]
    assert all(offsets(c) == [1, 2, 3] for c in conns)


async def test_new_epoch_sends_what_came_before_then_recovered_false(node):
    (conn,) = await live(node, 1)
    node.hub.fan_out(CHANNEL, 1, pub(1), None, "e1")
    node.hub.fan_out(CHANNEL, 2, pub(2), None, "e1")
    node.hub.fan_out(CHANNEL, 1, pub(1, "e2"), None, "e2")  # history lost: offsets start again
    await settle(node)
    recovered = json.loads(conn.frames()[2])
    assert conn.frames()[:2] == [pub(1), pub(2)]
    assert (recovered["type"], recovered["recovered"]) == ("recovered", False)
    assert conn.frames()[3:] == [pub(1, "e2")]


async def test_random_interleavings_deliver_every_publication_exactly_once(node):
    """Publishing, loop turns, (re)subscribes and unsubscribes interleaved at random: every
    socket sees strictly increasing offsets, and a socket subscribed throughout sees all."""
    node.hub.fanout_chunk = 3
    rng = random.Random(7)
    steady = await live(node, 12)
    others = await live(node, 8)
    offset = 0
    for _step in range(400):
        action = rng.random()
        if action < 0.5:
            offset += 1
            await node.history.append(CHANNEL, 100, "", "")  # keep the history top in step
            node.hub.fan_out(CHANNEL, offset, pub(offset), None, "e1")
        elif action < 0.75:
            await asyncio.sleep(0)
        elif action < 0.9:
            conn = rng.choice(others)
            sub = await node.subscribe(conn, CHANNEL)
            top, _epoch = await node.history.top(CHANNEL)
            node.go_live(sub, top)
        else:
            await node.unsubscribe(rng.choice(others), CHANNEL)
    await settle(node)
    for conn in steady:
        assert offsets(conn) == list(range(1, offset + 1))
    for conn in others:
        got = offsets(conn)
        assert got == sorted(set(got))


async def test_log_holds_one_pass_not_everything_under_sustained_publishing(node):
    """Publications keep arriving during every pass: what each pass started with is dropped
    once written, so the log stays short while every socket still gets everything once."""
    node.hub.fanout_chunk = 5
    conns = await live(node, 20)
    longest = 0
    for offset in range(1, 201):
        node.hub.fan_out(CHANNEL, offset, pub(offset), None, "e1")
        await asyncio.sleep(0)
        longest = max(longest, len(node.hub._logs.get(CHANNEL, ())))
    await settle(node)
    assert longest <= 10
    assert all(offsets(c) == list(range(1, 201)) for c in conns)
    assert CHANNEL not in node.hub._logs


def per_channel_sizes(node: Node) -> dict[str, int]:
    return node.per_channel_sizes()


async def until_left(node: Node) -> None:
    for _ in range(1000):  # the group leave runs after the unsubscribe, on its own
        if not node.leaves_pending():
            return
        await asyncio.sleep(0)


@pytest.fixture(params=["memory", "layer"])
async def either_node(request):
    """The memory broker, or the channel-layer broker (join, barrier, leave) over Channels'
    in-memory layer: both must free every per-channel entry."""
    history = MemoryHistory(epoch_for=lambda channel, window: "e1")
    broker = LayerBroker(InMemoryChannelLayer(), history, "t") if request.param == "layer" else None
    n = make_node(history, broker)
    await n.ensure_started()
    yield n
    n.stop()


async def test_per_channel_state_goes_with_the_last_subscriber(either_node):
    """Made-up channel names must not grow the process: once a channel has no local
    subscriber, nothing the node kept for it is left (issue 11, point 6)."""
    node = either_node
    before = per_channel_sizes(node)
    conns = [FakeConn(f"c{i}") for i in range(3)]
    names = [f"junk{i}" for i in range(40)]
    for conn in conns:
        node.add_connection(conn)
        for name in names:
            sub = await node.subscribe(conn, name)
            if name != "junk0":  # one left in its handshake (buffering) when it goes
                node.go_live(sub, (await node.history.top(name))[0])
    for name in names[:10]:
        _o, text, epoch = await node.history.append(name, 10, "", "")
        node.hub.fan_out(name, 1, text, None, epoch)
    assert per_channel_sizes(node)["channel_epochs"] == 10
    assert per_channel_sizes(node)["join_marks"] == 40
    for name in names[:20]:
        for conn in conns:
            await node.unsubscribe(conn, name)
    node.remove_connection(conns[0])
    node.remove_connection(conns[1])
    node.remove_connection(conns[2])
    await settle(node)
    await until_left(node)
    assert per_channel_sizes(node) == before


async def test_a_join_that_failed_leaves_nothing_behind():
    history = MemoryHistory(epoch_for=lambda channel, window: "e1")
    layer = InMemoryChannelLayer()
    node = make_node(history, LayerBroker(layer, history, "t"))
    await node.ensure_started()
    before = per_channel_sizes(node)

    async def broken_group_add(group, channel):
        raise ConnectionError("redis down")

    layer.group_add = broken_group_add
    conn = FakeConn("c")
    node.add_connection(conn)
    with pytest.raises(HubUnavailable):
        await node.subscribe(conn, "junk")
    await node.unsubscribe(conn, "junk")  # what the consumer does on that error
    await until_left(node)
    assert per_channel_sizes(node) == before
    node.stop()


async def test_a_channel_that_expired_under_its_subscriber_restarts_with_recovered_false():
    """HUB_HISTORY_TTL: a subscribed channel quiet for longer than the TTL comes back at
    offset 1 in a new epoch, below the offset its subscriber was given: the subscriber is
    told ``recovered: false`` and then gets it (without the reset it was skipped)."""
    now = [0.0]
    history = MemoryHistory(ttl_seconds=10, clock=lambda: now[0])
    node = make_node(history)
    await node.ensure_started()
    try:
        for _ in range(3):
            await history.append(CHANNEL, 100, "", "")
        conn = FakeConn("c")
        node.add_connection(conn)
        sub = await node.subscribe(conn, CHANNEL)
        top, old_epoch = await history.top(CHANNEL)
        node.go_live(sub, top)
        now[0] += 11
        offset, text, epoch = await history.append(CHANNEL, 100, "new-", "")
        assert (offset, text) == (1, "new-1") and epoch != old_epoch
        node.hub.fan_out(CHANNEL, offset, text, None, epoch)
        await settle(node)
        recovered = json.loads(conn.frames()[0])
        assert (recovered["type"], recovered["recovered"]) == ("recovered", False)
        assert conn.frames()[1:] == ["new-1"]
    finally:
        node.stop()


async def test_sweep_history_keeps_subscribed_channels_and_drops_the_rest():
    now = [0.0]
    history = MemoryHistory(ttl_seconds=10, clock=lambda: now[0])
    node = make_node(history)
    await node.ensure_started()
    try:
        conn = FakeConn("c")
        node.add_connection(conn)
        node.go_live(await node.subscribe(conn, "watched"), 0)
        _o, _t, epoch = await history.append("watched", 100, "", "")
        await history.append("idle", 100, "", "")
        for _ in range(4):  # 20 s of housekeeping, twice the TTL
            now[0] += 5
            node._next_touch = 0.0  # as if a third of the TTL had passed on the node's clock
            await node.sweep_history()
        assert history.channel_count() == 1
        assert await history.top("watched") == (1, epoch)
    finally:
        node.stop()
