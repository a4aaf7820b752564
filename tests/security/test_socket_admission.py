"""Issue 11 point 7, as an attacker fills a server with sockets that never authenticate:
they count against their own caps (per process and per address), so an authenticated user
still gets in, and an unauthenticated socket cannot squat a client id (PROTOCOL.md §2)."""

from __future__ import annotations

import asyncio
import base64
import os

import pytest
from asgiref.sync import sync_to_async

from tests.wsutil import connect, connected, expect_close, recv_until, send_json

pytestmark = pytest.mark.django_db(transaction=True)

FLOOD = 1000


async def raw_handshake(port: int, path: str = "/ws/"):
    """A bare WebSocket handshake, then silence (cheaper than a client library x1,000)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    except (ConnectionError, asyncio.IncompleteReadError):
        head = b""  # refused and torn down at once (a 1013 close, then the TCP reset)
    assert head.startswith(b"HTTP/1.1 101") or not head, head[:40]
    return writer


async def test_a_thousand_anonymous_sockets_do_not_keep_a_user_out(hub_server, make_user):
    _user, token = await sync_to_async(make_user)("alice")
    # Defaults for the caps (HUB_MAX_CONNECTIONS 1000: 100 unauthenticated, 100 per
    # address); they wait for an `auth` frame that never comes, for as long as they may.
    server = hub_server({"HUB_AUTH_TIMEOUT": "300"})
    gate = asyncio.Semaphore(50)

    async def one():
        async with gate:
            return await raw_handshake(server.port)

    writers = await asyncio.gather(*(one() for _ in range(FLOOD)))
    try:
        # The flood is in effect: one more unauthenticated socket is turned away...
        late = await connect(f"{server.ws_url}/ws/")
        assert await expect_close(late) == 1013
        # ...and an authenticated user, from the same address, is not.
        ws, hello = await connected(f"{server.ws_url}/ws/?token={token}")
        assert hello["user"] == "alice"
        await ws.close()
    finally:
        for writer in writers:
            writer.close()


async def test_per_address_cap_and_auth_off_anonymous_cap(hub_server, make_user):
    _user, token = await sync_to_async(make_user)("bob")
    server = hub_server({"HUB_MAX_CONNECTIONS_PER_ADDRESS": "2",
                         "HUB_MAX_ANONYMOUS_CONNECTIONS": "50", "HUB_REQUIRE_AUTH": "false"})
    anonymous = [(await connected(f"{server.ws_url}/ws/"))[0] for _ in range(2)]
    third = await connect(f"{server.ws_url}/ws/")
    assert await expect_close(third) == 1013  # with auth off, admitted anonymous count too
    users = [(await connected(f"{server.ws_url}/ws/?token={token}"))[0] for _ in range(3)]
    # A socket that authenticates leaves the anonymous count: its place is free again.
    await send_json(anonymous[0], {"type": "auth", "token": token, "id": "a"})
    assert (await recv_until(anonymous[0], lambda f: f.get("id") == "a"))["user"] == "bob"
    again, _ = await connected(f"{server.ws_url}/ws/")
    for ws in (*anonymous, *users, again):
        await ws.close()


async def test_an_anonymous_socket_cannot_squat_a_client_id(hub_server, make_user):
    _user, token = await sync_to_async(make_user)("carol")
    server = hub_server({"HUB_AUTH_TIMEOUT": "60"})
    squatter = await connect(f"{server.ws_url}/ws/fixed-id")  # never admitted: holds nothing
    owner, hello = await connected(f"{server.ws_url}/ws/fixed-id?token={token}")
    assert hello["client_id"] == "fixed-id"
    # The squatter authenticating later finds the id taken: 4009, like any second claim.
    await send_json(squatter, {"type": "auth", "token": token})
    assert await expect_close(squatter) == 4009
    await send_json(owner, {"type": "ping", "id": "still"})
    assert (await recv_until(owner, lambda f: f.get("id") == "still"))["type"] == "pong"
    await owner.close()
