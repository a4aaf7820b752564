"""Fan-out over a real daphne when publications come faster than they can be written: the
process catches up with coalesced writes (several frames in one socket write) and every
client still gets every publication as its own WebSocket message, once, in order."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request

import pytest

from tests.wsutil import connected, recv_until, send_json

pytestmark = pytest.mark.django_db(transaction=True)

SUBSCRIBERS = 200
PUBLICATIONS = 100
ENV = {
    "HUB_REQUIRE_AUTH": "false",
    "HUB_CHANNELS": json.dumps({"burst": {"subscribe": "anyone", "publish": "anyone", "history": 0}}),
    "HUB_RATE_LIMIT": "100000",
    "HUB_MAX_CONNECTIONS": "1000",
    "HUB_MAX_CONNECTIONS_PER_USER": "1000",
    # Auth off: every socket is anonymous, from one address (hub.socket.admission).
    "HUB_MAX_ANONYMOUS_CONNECTIONS": "1000",
    "HUB_MAX_CONNECTIONS_PER_ADDRESS": "1000",
    # 20 sockets per loop turn: a pass over 200 subscribers spans 10 turns, during which
    # the publisher's next frames are read (what 5,000 subscribers do at the default 500).
    "HUB_FANOUT_CHUNK": "20",
}


def coalesced_writes(base_url: str) -> float:
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = re.findall(r'^hub_coalesced_writes_total\{server="[^"]+"\} (\S+)$', text, re.M)
    assert found, "hub_coalesced_writes_total missing from /metrics"
    return sum(float(value) for value in found)


async def test_burst_is_caught_up_with_coalesced_writes_and_nothing_changes_for_clients(hub_server):
    server = hub_server(ENV, name="fanout-burst")
    subscribers = []
    for _ in range(SUBSCRIBERS):
        ws, _hello = await connected(f"{server.ws_url}/ws/")
        await send_json(ws, {"type": "subscribe", "channel": "burst"})
        reply = await recv_until(ws, lambda f: f["type"] in ("subscribed", "error"))
        assert reply["type"] == "subscribed", reply
        subscribers.append(ws)
    start = reply["offset"]
    before = await asyncio.to_thread(coalesced_writes, server.url)

    publisher, _ = await connected(f"{server.ws_url}/ws/")
    for seq in range(PUBLICATIONS):  # back to back, no waiting for acks
        await publisher.send(json.dumps({"type": "publish", "channel": "burst", "event": "tick",
                                         "data": {"seq": seq}, "id": seq}))

    async def collect(ws) -> list[dict]:
        got = []
        while len(got) < PUBLICATIONS:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 30))  # one message each
            if frame.get("type") == "tick":
                got.append(frame)
        return got

    received = await asyncio.gather(*(collect(ws) for ws in subscribers))
    for frames in received:
        assert [f["data"]["seq"] for f in frames] == list(range(PUBLICATIONS))
        assert [f["offset"] for f in frames] == list(range(start + 1, start + 1 + PUBLICATIONS))
    assert await asyncio.to_thread(coalesced_writes, server.url) > before

    # Nothing extra arrives afterwards (no duplicate from a later pass).
    for ws in subscribers[:20]:
        await send_json(ws, {"type": "ping", "id": "after"})
        frame = await recv_until(ws, lambda f: True)
        assert frame["type"] == "pong", frame
    for ws in [*subscribers, publisher]:
        await ws.close()
