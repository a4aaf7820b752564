"""The node facade over the memory twins, in process: the embedded publish needs no channel
layer, subscribe with recovery (PROTOCOL.md §5) end to end on fakes, a failed join frees
everything, and the delivery repair works through the pieces' public methods."""

from __future__ import annotations

import asyncio
import json

import pytest
from django.conf import settings
from django.test import override_settings

from hub.socket import protocol as p
from hub.socket import session as s
from hub.engine import factory
from hub.engine.errors import HubUnavailable
from hub.engine.memory import MemoryBroker, MemoryHistory, MemoryPresence
from hub.engine.node import Node


class Client:
    """What the node asks of a socket, recording every frame it is given."""

    def __init__(self, name: str = "c") -> None:
        self.client_id, self.username, self.closed = name, None, None
        self.frames: list[dict] = []

    def write_payload(self, payload) -> bool:
        self.frames.extend(json.loads(part.text) for part in payload.parts())
        return True

    def write_text(self, text: str) -> bool:
        self.frames.append(json.loads(text))
        return True

    def write_error(self, exc: p.ProtocolError) -> None:
        self.write_text(p.build_error_from(exc))

    def request_close(self, code: int) -> None:
        self.closed = code

    def kinds(self) -> list[str]:
        return [frame["type"] for frame in self.frames]


async def settle(node: Node) -> None:
    for _ in range(1000):
        if node.hub.idle() and not node.leaves_pending():
            return
        await asyncio.sleep(0)
    raise AssertionError("the node did not settle")


@pytest.fixture
async def node():
    history = MemoryHistory()
    made = Node(history=history, presence=MemoryPresence(), broker=MemoryBroker(history),
                server_name="test", history_size_for=lambda channel: 100)
    await made.ensure_started()
    yield made
    made.stop()


async def test_the_embedded_node_publishes_without_any_channel_layer(monkeypatch):
    """No REDIS_URL: a publication is handed to the hub directly (no loopback through
    Channels' in-memory layer, which the factory must not even ask for)."""
    def no_layer(*args, **kwargs):
        raise AssertionError("the embedded engine asked for a channel layer")

    monkeypatch.setattr(factory, "get_channel_layer", no_layer)
    with override_settings(HUB={**settings.HUB, "REDIS_URL": ""}):
        made = Node(**{**factory.node_parts(), "report": None})  # no housekeeping loop
    await made.ensure_started()
    client = Client()
    made.add_connection(client)
    await made.subscribe_live(client, ["all"])
    offset = await made.publish("all", "maintenance", {"at": "noon"})
    await settle(made)
    assert [(f["type"], f["offset"]) for f in client.frames] == [("maintenance", offset)]
    made.stop()


async def test_subscribe_with_recovery_replays_then_goes_live_once(node):
    for n in range(3):
        await node.publish("jobs", "tick", {"n": n})
    _top, epoch = await node.history.top("jobs")
    client = Client()
    node.add_connection(client)
    effect = s.Subscribe(items=(s.SubscribeItem("jobs", 1, epoch),), frame_id=7)
    assert await node.subscribe_with_recovery(client, effect) == []
    await node.publish("jobs", "tick", {"n": 3})
    await settle(node)
    assert client.kinds() == ["subscribed", "tick", "tick", "recovered", "tick"]
    assert client.frames[0]["id"] == 7 and client.frames[0]["offset"] == 3
    assert [f.get("offset") for f in client.frames if f["type"] == "tick"] == [2, 3, 4]
    assert client.frames[3] == {"type": "recovered", "channel": "jobs", "recovered": True,
                                "missed": 2}


async def test_recovery_from_another_epoch_is_refused_and_the_stream_goes_on(node):
    await node.publish("jobs", "tick", {})
    client = Client()
    node.add_connection(client)
    effect = s.Subscribe(items=(s.SubscribeItem("jobs", 1, "elsewhere"),), frame_id=None)
    await node.subscribe_with_recovery(client, effect)
    await node.publish("jobs", "tick", {})
    await settle(node)
    assert client.kinds() == ["subscribed", "recovered", "tick"]
    assert client.frames[1]["recovered"] is False and client.frames[2]["offset"] == 2


async def test_a_channel_that_cannot_be_joined_is_answered_and_leaves_nothing(node):
    before = node.per_channel_sizes()

    async def broken_join(channel):
        raise HubUnavailable("redis", "ConnectionError")

    node.broker.join = broken_join
    client = Client()
    node.add_connection(client)
    effect = s.Subscribe(items=(s.SubscribeItem("jobs", None, None),), frame_id=1)
    assert await node.subscribe_with_recovery(client, effect) == ["jobs"]
    await settle(node)
    assert client.kinds() == ["error"] and client.frames[0]["channel"] == "jobs"
    assert node.per_channel_sizes() == before


async def test_a_suspect_delivery_is_caught_up_from_the_history(node):
    """What reached the history but not this process (a lost pub/sub connection) is
    replayed once delivery is proven again; what was delivered is not sent twice."""
    client = Client()
    node.add_connection(client)
    await node.subscribe_live(client, ["jobs"])
    await node.publish("jobs", "tick", {})
    for _ in range(2):  # in the history, never delivered here
        await node.history.append("jobs", 100, '{"type":"tick","offset":', "}")
    await settle(node)
    node.broker.delivery_suspect = True
    await node.check_delivery()
    await settle(node)
    assert [f["offset"] for f in client.frames] == [1, 2, 3]
    assert node.broker.delivery_suspect is False
