"""The daphne seam's fallback over a real daphne: ``HUB_DAPHNE_FAST_PATH=off`` runs the stock
ASGI path (``AsgiWriter``, daphne's own classes), and PROTOCOL.md still holds: publications
arrive, a slow consumer is closed (4010), an oversized frame gets 1009, a full server 1013."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from tests.wsutil import connect, connected, expect_close, recv_until, send_json

pytestmark = pytest.mark.django_db(transaction=True)

FALLBACK = {"HUB_DAPHNE_FAST_PATH": "off", "HUB_REQUIRE_AUTH": "false",
            "HUB_CHANNELS": json.dumps({"feed": {"subscribe": "anyone", "publish": "anyone"}}),
            "HUB_RATE_LIMIT": "100000", "HUB_MAX_QUEUED_BYTES": "65536",
            "HUB_MAX_MESSAGE_SIZE": "32768"}


async def subscribe(ws, channel: str) -> None:
    await send_json(ws, {"type": "subscribe", "channel": channel})
    await recv_until(ws, lambda f: f["type"] == "subscribed")


def raw_subscriber(port: int) -> socket.socket:
    """A client that handshakes, subscribes, then never reads: its buffers fill up."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall((f"GET /ws/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    assert b" 101 " in sock.recv(4096)
    payload = json.dumps({"type": "subscribe", "channel": "feed"}).encode()
    mask = b"\x01\x02\x03\x04"
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask
                 + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    sock.settimeout(10)  # until the server answers "subscribed", not for a fixed time
    seen = b""
    while b"subscribed" not in seen:
        chunk = sock.recv(4096)
        assert chunk, f"closed before subscribing: {seen!r}"
        seen += chunk
    sock.settimeout(None)
    return sock


async def test_fallback_delivers_closes_slow_consumers_and_keeps_close_codes(hub_server):
    server = hub_server({**FALLBACK, "HUB_MAX_ANONYMOUS_CONNECTIONS": "3"}, name="hub-fallback")
    fast, _ = await connected(f"{server.ws_url}/ws/")
    await subscribe(fast, "feed")
    slow = await asyncio.to_thread(raw_subscriber, server.port)
    publisher, _ = await connected(f"{server.ws_url}/ws/")
    # a fourth socket is over HUB_MAX_ANONYMOUS_CONNECTIONS: 1013, which daphne's stock close refuses
    extra = await connect(f"{server.ws_url}/ws/")
    assert await expect_close(extra) == 1013

    count, pad = 400, "x" * 20_000  # 8 MB: more than the kernel buffers hold
    received = []

    async def read_fast():
        while len(received) < count:
            frame = await recv_until(fast, lambda f: f["type"] == "message")
            received.append(frame["data"]["n"])

    reader = asyncio.create_task(read_fast())
    for n in range(count):
        await send_json(publisher, {"type": "publish", "channel": "feed", "data": {"n": n, "pad": pad}})
        if n % 20 == 0:
            await asyncio.sleep(0.01)  # pacing: the fast reader keeps up, the slow one cannot
    await asyncio.wait_for(reader, 60)
    assert received == list(range(count))  # every publication, in order

    # the reader that never reads was closed as a slow consumer: its socket ends with 4010
    deadline = time.monotonic() + 30
    while "slow consumer" not in server.log_text() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    log = server.log_text()
    assert "slow consumer" in log
    assert "daphne fast path off" in log  # really the fallback, not the fast path

    # an oversized frame: close 1009, not a dropped connection
    await send_json(fast, {"type": "ping", "pad": "x" * 40_000})
    assert await expect_close(fast) == 1009
    slow.close()
    await publisher.close()
