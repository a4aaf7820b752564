"""Issue 11, point 6: client-chosen channel names must not grow the server without bound.

The attack, as reproduced against main: a plain user's socket subscribes to made-up names
under the ``*`` catch-all policy (1,045 channels in 8 s); memory grew and never shrank, and
Redis kept 2,093 keys with no TTL. Here the attacker gets generous limits (rate, channels
per socket) so that only the bounds under test stand in the way.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import redis as redis_sync
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from hub.conf import get_policies
from hub.engine.node import get_node, reset_node
from hub.routing import build_websocket_application
from tests.wsutil import connected, recv_until, send_json

JUNK = 1000
BATCH = 100  # PROTOCOL.md: at most 100 channels per subscribe frame
ATTACKER_LIMITS = {"HUB_RATE_LIMIT": "100000", "HUB_MAX_SUBSCRIPTIONS": "200"}


async def subscribe_batch(send, recv, names: list[str], frame_id: str) -> None:
    await send({"type": "subscribe", "channels": names, "id": frame_id})
    pending = set(names)
    while pending:
        frame = await recv()
        assert frame["type"] != "error", frame
        if frame["type"] == "subscribed":
            pending.discard(frame["channel"])


async def unsubscribe_batch(send, recv, names: list[str]) -> None:
    await send({"type": "unsubscribe", "channels": names})
    pending = set(names)
    while pending:
        frame = await recv()
        if frame["type"] == "unsubscribed":
            pending.discard(frame["channel"])


async def attack(send, recv) -> None:
    """1,000 made-up channels, 100 at a time, each batch dropped before the next."""
    for start in range(0, JUNK, BATCH):
        names = [f"junk-{i}" for i in range(start, start + BATCH)]
        await subscribe_batch(send, recv, names, f"s{start}")
        await unsubscribe_batch(send, recv, names)


def keys_and_ttls(client: redis_sync.Redis) -> dict[bytes, int]:
    """Every key and its PTTL in ms (-1: none); keys that expired while listed are left out."""
    found = {key: client.pttl(key) for key in client.scan_iter(match="*", count=1000)}
    return {key: left for key, left in found.items() if left != -2}


@pytest.mark.django_db(transaction=True)
async def test_junk_channels_leave_no_keys_in_redis(hub_server, redis_server, make_user):
    from asgiref.sync import sync_to_async

    _user, token = await sync_to_async(make_user)("mallory")
    ttl = 2
    server = hub_server({"REDIS_URL": redis_server.url, "HUB_HISTORY_TTL": str(ttl),
                         "HUB_CHANNELS": json.dumps({"chat.*": {
                             "subscribe": "authenticated", "publish": "authenticated"}}),
                         **ATTACKER_LIMITS})
    check = redis_sync.Redis.from_url(redis_server.url)
    ws, _hello = await connected(f"{server.ws_url}/ws/?token={token}")

    async def send(frame):
        await send_json(ws, frame)

    async def recv():
        return await recv_until(ws, lambda f: True)

    await attack(send, recv)

    # Reading a channel (subscribe, its top, its history) writes nothing for it: not one key
    # of a junk channel exists, the count is what it was, and every key has a TTL.
    keys = keys_and_ttls(check)
    assert [key for key in keys if b"junk-" in key] == []
    assert len(keys) <= 8, keys  # the salt and presence (process, socket, user)
    assert sorted(key for key, left in keys.items() if left == -1) == []

    # Where a policy lets users publish, made-up names do make history: every key of it has
    # a TTL of at most HUB_HISTORY_TTL, and all of it is gone once that has passed.
    for i in range(200):
        await send({"type": "publish", "channel": f"chat.junk-{i}", "data": {"i": i}, "id": i})
        assert (await recv_until(ws, lambda f, i=i: f.get("id") == i))["type"] == "published"
    keys = keys_and_ttls(check)
    junk = {key: left for key, left in keys.items() if b"junk-" in key}
    assert len(junk) >= 200
    assert {key: left for key, left in junk.items() if not 0 < left <= ttl * 1000} == {}
    assert sorted(key for key, left in keys.items() if left == -1) == []
    for _ in range(100):
        left = list(check.scan_iter(match="*junk-*", count=1000))
        if not left:
            break
        await asyncio.sleep(0.1)
    assert left == []
    # the attacker's socket is still served: the bounds did not cost it its connection
    await send({"type": "ping", "id": "p"})
    assert (await recv_until(ws, lambda f: f.get("id") == "p"))["type"] == "pong"
    await ws.close()


@pytest.fixture
def fresh_engine():
    reset_node()
    channel_layers.backends.clear()
    get_policies.cache_clear()
    yield
    reset_node()
    get_policies.cache_clear()


def per_channel_sizes(node) -> dict[str, int]:
    return node.per_channel_sizes()  # every per-channel container of the hub and the broker


@pytest.mark.django_db(transaction=True)
async def test_junk_channels_leave_nothing_in_the_process_memory(fresh_engine, make_user):
    """The embedded engine, in process: after the unsubscribes the node's per-channel state
    is back to its size before the attack, and the history holds nothing for junk names."""
    from asgiref.sync import sync_to_async
    from django.conf import settings

    _user, token = await sync_to_async(make_user)("mallory")
    limits = {"RATE_LIMIT": 100000, "MAX_SUBSCRIPTIONS": 200, "REDIS_URL": ""}
    with override_settings(HUB={**settings.HUB, **limits}):
        node = get_node()
        comm = WebsocketCommunicator(build_websocket_application(), f"/ws/?token={token}")
        assert (await comm.connect())[0]

        async def send(frame):
            await comm.send_to(text_data=json.dumps(frame))

        async def recv():
            return json.loads(await comm.receive_from(5))

        while (await recv())["type"] != "connected":
            pass
        await settle_leaves(node)
        before = per_channel_sizes(node)
        history_before = node.history.channel_count()

        await attack(send, recv)
        await settle_leaves(node)

        assert per_channel_sizes(node) == before
        assert node.history.channel_count() == history_before  # reading made no history
        await comm.disconnect()


async def settle_leaves(node) -> None:
    """Group leaves run in tasks of their own: let them finish."""
    for _ in range(2000):
        if not node.leaves_pending():
            return
        await asyncio.sleep(0)


@pytest.mark.parametrize("value", ["0", "-5", "a day"])
def test_settings_refuse_a_history_ttl_that_is_no_bound(value):
    import os
    import subprocess
    import sys

    env = dict(os.environ, HUB_HISTORY_TTL=value)
    result = subprocess.run([sys.executable, "manage.py", "check"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "HUB_HISTORY_TTL" in result.stderr
