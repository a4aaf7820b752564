"""Abuse replies keep the contract (PROTOCOL.md §3): a `rate_limited` error is the direct
reply to the dropped frame, so it echoes that frame's `id`, even for a large frame the hub
does not parse; garbage over the limit is answered without an `id`, never with a close
other than 4029."""

from __future__ import annotations

import json

import pytest

from tests.wsutil import connected, expect_close, recv_json, send_json

pytestmark = pytest.mark.django_db(transaction=True)


async def test_rate_limited_replies_echo_the_dropped_frames_id(hub_server):
    server = hub_server({"HUB_REQUIRE_AUTH": "false", "HUB_RATE_LIMIT": "3"})
    ws, _ = await connected(f"{server.ws_url}/ws/")
    for n in range(3):
        await send_json(ws, {"type": "ping", "id": n})
        assert (await recv_json(ws))["type"] == "pong"
    await send_json(ws, {"type": "ping", "id": "dropped-1"})
    reply = await recv_json(ws)
    assert (reply["type"], reply["code"], reply["id"]) == ("error", "rate_limited", "dropped-1")
    await ws.send(json.dumps({"type": "publish", "id": 77, "channel": "x",
                              "data": "y" * 100_000}))
    reply = await recv_json(ws)
    assert (reply["code"], reply["id"]) == ("rate_limited", 77)
    await ws.send("{garbage")
    reply = await recv_json(ws)
    assert reply["code"] == "rate_limited" and "id" not in reply
    await send_json(ws, {"type": "ping", "id": "over"})
    assert await expect_close(ws) == 4029
    assert "Traceback" not in server.log_text()
