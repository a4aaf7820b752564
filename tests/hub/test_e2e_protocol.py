"""PROTOCOL.md sections 1-4 over real sockets: a real daphne process, the `websockets` client."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from tests.wsutil import connect, connected, expect_close, recv_json, recv_until, send_json

pytestmark = pytest.mark.django_db(transaction=True)

OPEN = {"HUB_REQUIRE_AUTH": "false"}
PUBLISHABLE = json.dumps({
    "jobs": {"subscribe": "authenticated", "publish": "anyone"},
    "notifications": {"subscribe": "authenticated", "publish": "anyone"},
    "test_channel": {"subscribe": "anyone", "publish": "anyone"},
})


async def subscribe(ws, *channels, **extra):
    await send_json(ws, {"type": "subscribe", "channels": list(channels), **extra})
    return [await recv_until(ws, lambda f: f["type"] in ("subscribed", "error"))
            for _ in channels]


async def test_seed_client_one_ping_and_subscribe(hub_server):
    server = hub_server(OPEN)
    ws, hello = await connected(f"{server.ws_url}/ws/test_client_001")
    assert hello["client_id"] == "test_client_001"
    await send_json(ws, {"type": "ping", "timestamp": "2025-01-20T10:30:00Z"})
    pong = await recv_until(ws, lambda f: True)
    assert pong["type"] == "pong" and pong["timestamp"].endswith("Z")
    await send_json(ws, {"type": "subscribe", "channel": "test_channel"})
    reply = await recv_until(ws, lambda f: True)
    assert reply["type"] == "subscribed" and reply["channel"] == "test_channel"
    assert isinstance(reply["offset"], int) and reply["epoch"]
    await ws.close()


async def test_seed_client_two_root_endpoint_both_channels(hub_server):
    server = hub_server({**OPEN, "HUB_CHANNELS": PUBLISHABLE})
    ws, _ = await connected(f"{server.ws_url}/")
    replies = await subscribe(ws, "jobs", "notifications")
    assert [r["channel"] for r in replies] == ["jobs", "notifications"]
    publisher, _ = await connected(f"{server.ws_url}/ws")
    for channel, event in (("jobs", "job_submitted"), ("notifications", "notification")):
        await send_json(publisher, {"type": "publish", "channel": channel, "event": event,
                                    "data": {"n": 1}, "id": channel})
        published = await recv_until(publisher, lambda f: f["type"] == "published")
        assert published["id"] == channel and published["offset"] >= 1
    got = [await recv_until(ws, lambda f: "offset" in f and f["type"] != "subscribed")
           for _ in range(2)]
    assert [(f["type"], f["channel"]) for f in got] == [
        ("job_submitted", "jobs"), ("notification", "notifications")]
    for endpoint in ("/ws/", "/ws/some.id-1/"):
        other, hello = await connected(server.ws_url + endpoint)
        assert hello["type"] == "connected"
        await other.close()
    await ws.close()
    await publisher.close()


async def test_origin_check_refuses_with_403_and_lets_no_origin_through(hub_server):
    server = hub_server({**OPEN, "HUB_ALLOWED_ORIGINS": "https://dash.example.org"})
    with pytest.raises(websockets.InvalidStatus) as info:
        await connect(f"{server.ws_url}/ws/", origin="https://evil.example.com")
    assert info.value.response.status_code == 403
    ok, _ = await connected(f"{server.ws_url}/ws/", origin="https://dash.example.org")
    bare, _ = await connected(f"{server.ws_url}/ws/")  # no Origin header: not a browser
    await ok.close()
    await bare.close()


async def test_every_credential_kind_and_failures(hub_server, make_user):
    from asgiref.sync import sync_to_async

    user, token = await sync_to_async(make_user)("alice")
    server = hub_server({"HUB_AUTH_TIMEOUT": "1"})
    base = f"{server.ws_url}/ws/"
    ws, hello = await connected(base, additional_headers={"Authorization": f"Bearer {token}"})
    assert hello["user"] == "alice"
    await ws.close()
    ws, hello = await connected(f"{base}?token={token}")
    assert hello["user"] == "alice"
    await ws.close()
    jwt = await sync_to_async(_jwt_for)(user)
    ws, hello = await connected(f"{base}?token={jwt}")
    assert hello["user"] == "alice"
    await ws.close()
    cookie = await sync_to_async(_session_cookie_for)(user)
    ws, hello = await connected(base, additional_headers={"Cookie": f"sessionid={cookie}"})
    assert hello["user"] == "alice"
    await ws.close()
    # First-frame auth: before it only auth and ping are served.
    ws = await connect(base)
    await send_json(ws, {"type": "subscribe", "channel": "jobs", "id": 1})
    assert (await recv_json(ws))["code"] == "not_authenticated"
    await send_json(ws, {"type": "ping", "id": 2})
    assert (await recv_json(ws))["type"] == "pong"
    await send_json(ws, {"type": "auth", "token": token, "id": 3})
    hello = await recv_json(ws)
    assert (hello["type"], hello["user"], hello["id"]) == ("connected", "alice", 3)
    await ws.close()
    ws = await connect(f"{base}?token=not-a-real-token")
    assert await expect_close(ws) == 4001
    ws = await connect(base)
    await send_json(ws, {"type": "auth", "token": "wrong"})
    assert await expect_close(ws) == 4001
    ws = await connect(base)  # says nothing: closed when HUB_AUTH_TIMEOUT runs out
    assert await expect_close(ws, timeout=10) == 4001


def _jwt_for(user) -> str:
    from rest_framework_simplejwt.tokens import AccessToken

    return str(AccessToken.for_user(user))


def _session_cookie_for(user) -> str:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


async def test_channel_permissions(hub_server, make_user):
    from asgiref.sync import sync_to_async

    _alice, alice_token = await sync_to_async(make_user)("alice")
    _boss, staff_token = await sync_to_async(make_user)("boss", staff=True)
    server = hub_server({})
    alice, _ = await connected(f"{server.ws_url}/ws/?token={alice_token}")
    replies = await subscribe(alice, "alerts", "user:bob", "user:alice", "jobs", "stock_updates")
    assert [(r["type"], r.get("code")) for r in replies] == [
        ("error", "forbidden"), ("error", "forbidden"), ("subscribed", None),
        ("subscribed", None), ("subscribed", None)]
    await send_json(alice, {"type": "publish", "channel": "jobs", "data": {}, "id": 1})
    assert (await recv_json(alice))["code"] == "forbidden"
    boss, _ = await connected(f"{server.ws_url}/ws/?token={staff_token}")
    replies = await subscribe(boss, "alerts", "user:alice")
    assert [r["type"] for r in replies] == ["subscribed", "subscribed"]
    await alice.close()
    await boss.close()


async def test_limits_connections_user_and_client_id(hub_server, make_user):
    from asgiref.sync import sync_to_async

    tokens = [(await sync_to_async(make_user)(name))[1] for name in ("alice", "bob", "carol")]
    alice, bob, carol = tokens
    server = hub_server({"HUB_MAX_CONNECTIONS": "2", "HUB_MAX_CONNECTIONS_PER_USER": "1",
                         "HUB_MAX_ANONYMOUS_CONNECTIONS": "2"})
    first, _ = await connected(f"{server.ws_url}/ws/mine?token={alice}")
    again = await connect(f"{server.ws_url}/ws/mine?token={bob}")
    assert await expect_close(again) == 4009
    second = await connect(f"{server.ws_url}/ws/?token={alice}")
    assert await expect_close(second) == 1013  # per user
    others = [await connect(f"{server.ws_url}/ws/") for _ in range(2)]  # pending auth
    over = await connect(f"{server.ws_url}/ws/")
    assert await expect_close(over) == 1013  # the cap for unauthenticated sockets
    # Authenticated sockets are counted apart: the pending ones keep no user out...
    other_user, _ = await connected(f"{server.ws_url}/ws/?token={bob}")
    # ...and HUB_MAX_CONNECTIONS caps them: alice and bob hold both places.
    third = await connect(f"{server.ws_url}/ws/?token={carol}")
    assert await expect_close(third) == 1013  # per process
    for ws in [first, other_user, *others]:
        await ws.close()


async def test_rate_limit_then_close_4029(hub_server):
    server = hub_server({**OPEN, "HUB_RATE_LIMIT": "5"})
    ws, _ = await connected(f"{server.ws_url}/ws/")
    for index in range(5):
        await send_json(ws, {"type": "ping", "id": index})
        assert (await recv_json(ws))["type"] == "pong"
    await send_json(ws, {"type": "ping", "id": 99})
    assert (await recv_json(ws))["code"] == "rate_limited"
    for _ in range(5):
        await send_json(ws, {"type": "ping"})
    assert await expect_close(ws) == 4029


async def test_subscription_limit_and_frame_size(hub_server):
    server = hub_server({**OPEN, "HUB_MAX_SUBSCRIPTIONS": "2", "HUB_MAX_MESSAGE_SIZE": "1024"})
    ws, _ = await connected(f"{server.ws_url}/ws/")
    replies = await subscribe(ws, "a", "b", "c")
    assert [r.get("code") for r in replies] == [None, None, "too_many_subscriptions"]
    await send_json(ws, {"type": "ping", "pad": "x" * 2000})
    assert await expect_close(ws) == 1009


async def test_heartbeats_and_idle_timeout(hub_server):
    # The timeout leaves room for a loaded CI machine: the lively client's pongs must reach
    # the server within it (1.5 s once failed with both cores busy).
    server = hub_server({**OPEN, "HUB_HEARTBEAT_INTERVAL": "0.3", "HUB_CONNECTION_TIMEOUT": "2.5"})
    quiet, hello = await connected(f"{server.ws_url}/ws/", ping_interval=None)
    assert hello["heartbeat_interval"] == 0.3
    lively, _ = await connected(f"{server.ws_url}/ws/", ping_interval=None)
    beats = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 3.5
    while loop.time() < deadline:
        frame = await recv_json(lively)
        if frame["type"] == "heartbeat":
            beats += 1
            await send_json(lively, {"type": "pong"})
    assert beats >= 3
    assert await expect_close(quiet) == 4008
    await send_json(lively, {"type": "ping"})
    assert (await recv_until(lively, lambda f: f["type"] == "pong"))["type"] == "pong"
    await lively.close()


async def test_websocket_level_pongs_count_as_liveness(hub_server):
    """A client that sends no frames but answers daphne's WebSocket pings (as `websockets`
    does by itself) is alive: no 4008, unlike one that answers nothing (test above)."""
    server = hub_server({**OPEN, "HUB_HEARTBEAT_INTERVAL": "60", "HUB_CONNECTION_TIMEOUT": "3"},
                        args=["--ping-interval", "1", "--ping-timeout", "30"])
    ws, _ = await connected(f"{server.ws_url}/ws/", ping_interval=None)
    await asyncio.sleep(7)  # under test: silent over twice the timeout, daphne pinging every ~2 s
    await send_json(ws, {"type": "ping", "id": "alive"})
    assert (await recv_until(ws, lambda f: f["type"] == "pong"))["id"] == "alive"
    await ws.close()


async def test_every_error_code_over_a_real_socket(hub_server, make_user):
    from asgiref.sync import sync_to_async

    _user, token = await sync_to_async(make_user)("alice")
    server = hub_server({"HUB_CHANNELS": json.dumps({"*": None, "open.*": {}}),
                         "HUB_MAX_SUBSCRIPTIONS": "1", "HUB_RATE_LIMIT": "30",
                         "HUB_HANDLER_MODULES": "tests.hub.failing_handler"})
    anonymous = await connect(f"{server.ws_url}/ws/")
    await send_json(anonymous, {"type": "subscribe", "channel": "jobs"})
    assert (await recv_json(anonymous))["code"] == "not_authenticated"
    ws, _ = await connected(f"{server.ws_url}/ws/?token={token}")
    cases = [
        ("{not json", "invalid_json"),
        ("[1, 2]", "invalid_json"),
        (json.dumps({"type": "subscribe", "id": 1}), "invalid_message"),
        (json.dumps({"type": "subscribe", "channel": 5, "id": 2}), "invalid_message"),
        (json.dumps({"type": "teleport", "id": 3}), "unknown_type"),
        (json.dumps({"type": "subscribe", "channel": "bad name!", "id": 4}), "invalid_channel"),
        (json.dumps({"type": "subscribe", "channel": "jbos", "id": 5}), "unknown_channel"),
        (json.dumps({"type": "subscribe", "channel": "alerts", "id": 6}), "forbidden"),
        (json.dumps({"type": "subscribe", "channels": ["open.a", "open.b"], "id": 7}), None),
        (json.dumps({"type": "explode", "id": 8}), "internal_error"),
    ]
    for text, code in cases:
        await ws.send(text)
        reply = await recv_json(ws)
        if code is None:  # open.a subscribed, open.b over the limit of 1
            assert reply["type"] == "subscribed"
            reply = await recv_json(ws)
            code = "too_many_subscriptions"
        assert reply["type"] == "error" and reply["code"] == code, (text, reply)
    for _ in range(30):
        await send_json(ws, {"type": "ping"})
    codes = set()
    for _ in range(30):
        frame = await recv_json(ws)
        codes.add(frame.get("code", frame["type"]))
    assert "rate_limited" in codes
    await ws.close()
    await anonymous.close()


async def test_bad_input_never_crashes_and_other_clients_keep_receiving(hub_server):
    server = hub_server({**OPEN, "HUB_CHANNELS": PUBLISHABLE, "HUB_RATE_LIMIT": "1000"})
    watcher, _ = await connected(f"{server.ws_url}/ws/")
    await subscribe(watcher, "test_channel")
    attacker, _ = await connected(f"{server.ws_url}/ws/")
    publisher, _ = await connected(f"{server.ws_url}/ws/")
    nasty = ["", "{", "null", "42", '"str"', "[" * 50_000 + "]" * 50_000,
             json.dumps({"type": "websocket.disconnect"}), json.dumps({"type": "hub.fanout"}),
             json.dumps({"type": "hub.message", "text": "x"}), json.dumps({"type": None}),
             json.dumps({"type": "subscribe", "channels": "jobs"}),
             json.dumps({"type": "subscribe", "channels": ["x"] * 101}),
             json.dumps({"type": "publish", "channel": "test_channel", "event": "pong", "data": 1}),
             json.dumps({"type": "ping", "id": {"nested": True}}), b"\x00\xffbinary", b""]
    sent = 0
    for item in nasty:
        await attacker.send(item)
        reply = await recv_json(attacker)
        assert reply["type"] == "error", (item[:40], reply)
        await send_json(publisher, {"type": "publish", "channel": "test_channel",
                                    "data": {"seq": sent}})
        sent += 1
    seqs = []
    while len(seqs) < sent:
        frame = await recv_until(watcher, lambda f: f["type"] == "message")
        seqs.append(frame["data"]["seq"])
    assert seqs == list(range(sent))
    await send_json(attacker, {"type": "ping", "id": "alive"})
    assert (await recv_until(attacker, lambda f: f["type"] == "pong"))["id"] == "alive"
    # Invalid UTF-8 in a text frame: the WebSocket layer closes with 1007, never 1011.
    await attacker.send(b"\xff\xfe\xfd", text=True)
    assert await expect_close(attacker) == 1007
    await send_json(watcher, {"type": "ping", "id": "still"})
    assert (await recv_until(watcher, lambda f: f["type"] == "pong"))["id"] == "still"
    for ws in (watcher, publisher):
        await ws.close()
    assert "Traceback" not in server.log_text()


async def test_tokens_never_appear_in_logs(hub_server, make_user):
    from asgiref.sync import sync_to_async

    _user, token = await sync_to_async(make_user)("alice")
    server = hub_server({})
    ws, _ = await connected(f"{server.ws_url}/ws/?token={token}")
    await ws.close()
    bad = await connect(f"{server.ws_url}/ws/?token=secret-not-valid-123")
    await expect_close(bad)
    await asyncio.to_thread(_http_get, f"{server.url}/static/none.css?token={token}")
    for _ in range(200):  # until daphne has logged the last request, not for a fixed time
        if "none.css" in server.log_text():
            break
        await asyncio.sleep(0.05)
    assert "none.css" in server.log_text(), "the access log never showed the last request"
    log = server.log_text()
    assert "WSCONNECT" in log or "GET" in log  # the access log is on
    assert token not in log and "secret-not-valid-123" not in log


def _http_get(url: str) -> None:
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(url, timeout=5).read()
    except urllib.error.HTTPError:
        pass


def test_bad_setting_stops_start_up_naming_the_variable():
    import os
    import subprocess
    import sys

    for name, value in (("HUB_MAX_CONNECTIONS", "many"), ("HUB_REQUIRE_AUTH", "perhaps"),
                        ("HUB_CHANNELS", '{"x": {"subscribe": "everyone"}}'),
                        ("REDIS_URL", "http://nope")):
        env = dict(os.environ, **{name: value})
        result = subprocess.run([sys.executable, "-m", "hub.server", "-p", "1"], env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode != 0
        assert name in result.stderr, result.stderr[-500:]
