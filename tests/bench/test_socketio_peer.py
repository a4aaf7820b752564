"""The socket.io (Node) bench peer and the load tool's Engine.IO v4 dialect.

The first test is the bench's own smoke run against the real peer (node + the pinned
socket.io, installed with ``npm ci`` from bench/peers/socketio/package-lock.json when
missing, which needs the npm registry): every delivery accounted for, no timing
assertions. The second feeds real Engine.IO/socket.io frames (as socket.io 4 writes them)
to the load tool's client, with no server."""

from __future__ import annotations

import asyncio
import json

import pytest

from bench import procs
from bench.loadtool import SubscriberPool, Target, publish_and_count
from bench.wsproto import RecvStats, WSClient, _server_frame, dialect_of

N = 100


@pytest.mark.e2e
def test_socketio_peer_smoke_zero_lost():
    server = procs.start_server("socketio")
    try:
        path = procs.ws_path("socketio")
        with SubscriberPool([Target("127.0.0.1", server.port, path, N)], "bench", procs=1,
                            concurrency=50, timeout=60) as pool:
            assert pool.connect_summary()["connected"] == N
            res = publish_and_count(pool, Target("127.0.0.1", server.port, path), mode="paced",
                                    rate=20, duration=0.5, max_wait=60, quiet=30)
    finally:
        server.stop()
    assert res["published"] == res["acked"] == 10, res["publish_errors"]
    assert res["drained"] and res["lost"] == 0 and res["dups"] == 0 and res["bogus"] == 0
    assert res["deliveries"] == N * 10 and res["closes"] == {}


class Wire:
    """An asyncio transport that keeps what the client writes (unmasked here for reading)."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def write(self, data: bytes) -> None:
        n, i = data[1] & 0x7F, 2
        if n == 126:
            n, i = int.from_bytes(data[2:4], "big"), 4
        mask, body = data[i:i + 4], data[i + 4:i + 4 + n]
        self.sent.append(bytes(b ^ mask[k % 4] for k, b in enumerate(body)))

    def is_closing(self) -> bool:
        return False


def test_the_load_tool_speaks_engine_io_v4_for_the_socketio_peer():
    assert dialect_of(procs.SOCKETIO_PATH) == "socketio" and dialect_of("/ws/") == "hub"

    async def scenario() -> tuple[WSClient, RecvStats, Wire, list]:
        stats, wire, controls = RecvStats(), Wire(), []
        client = WSClient("127.0.0.1", 1, procs.SOCKETIO_PATH, stats,
                          on_control=lambda _c, obj: controls.append(obj))
        client.transport, client.handshaken = wire, True  # past the HTTP upgrade
        for text in ['0{"sid":"e1","upgrades":[],"pingInterval":25000,"pingTimeout":20000}',
                     '40{"sid":"s1"}', "2",
                     '42["subscribed",{"type":"subscribed","channel":"bench","offset":0}]',
                     '42["tick",{"type":"tick","channel":"bench","offset":1,'
                     '"data":{"bseq":0,"bts":1}}]']:
            client.data_received(_server_frame(text.encode()))
        client.send_json({"type": "subscribe", "channel": "bench"})
        return client, stats, wire, controls

    client, stats, wire, controls = asyncio.run(scenario())
    assert client.client_id == "s1"
    assert [c["type"] for c in controls] == ["connected", "subscribed"]
    assert stats.deliveries == 1 and stats.distinct == 1 and stats.heartbeats == 1
    assert wire.sent[:2] == [b"40", b"3"]  # namespace connect, then pong to the ping
    assert json.loads(wire.sent[2][2:]) == ["subscribe", {"type": "subscribe", "channel": "bench"}]
    assert client.event_wrap("publish") == ('42["publish",', "]")
