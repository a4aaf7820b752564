"""Issue 3 against real processes: two daphnes over one private Redis, recovery, presence,
SIGKILL, a Redis outage inside the test, and slow consumers over real TCP."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.error
import urllib.request

import pytest

from tests.wsutil import connect, connected, expect_close, recv_until, send_json

pytestmark = pytest.mark.django_db(transaction=True)

CHANNELS = json.dumps({"feed": {"subscribe": "anyone", "publish": "anyone", "history": 1000},
                       "tiny": {"subscribe": "anyone", "publish": "anyone", "history": 3}})


def cluster_env(redis_url: str, **extra) -> dict[str, str]:
    return {"REDIS_URL": redis_url, "HUB_REQUIRE_AUTH": "false", "HUB_CHANNELS": CHANNELS,
            "HUB_RATE_LIMIT": "100000", "HUB_HEARTBEAT_INTERVAL": "1", **extra}


def http(method: str, url: str, token: str | None = None, body: dict | None = None):
    """(status, json body, seconds taken)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null"), time.monotonic() - started
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null"), time.monotonic() - started


async def ahttp(*args, **kwargs):
    return await asyncio.to_thread(http, *args, **kwargs)


def broadcaster(make_user, name="ops", staff=True):
    from django.contrib.auth.models import Permission

    user, token = make_user(name, staff=staff)
    user.user_permissions.add(Permission.objects.get(codename="broadcast",
                                                     content_type__app_label="hub"))
    return token


async def subscribe(ws, channel, **extra):
    await send_json(ws, {"type": "subscribe", "channel": channel, **extra})
    return await recv_until(ws, lambda f: f["type"] in ("subscribed", "error"))


async def test_cross_server_delivery_channels_and_users(hub_server, redis_server, make_user):
    from asgiref.sync import sync_to_async

    token = await sync_to_async(broadcaster)(make_user)
    _alice, alice_token = await sync_to_async(make_user)("alice", False)
    a = hub_server(cluster_env(redis_server.url), name="hub-a")
    b = hub_server(cluster_env(redis_server.url), name="hub-b")
    on_a, _ = await connected(f"{a.ws_url}/ws/")
    on_b, _ = await connected(f"{b.ws_url}/ws/")
    for ws in (on_a, on_b):
        assert (await subscribe(ws, "feed"))["type"] == "subscribed"
    await send_json(on_a, {"type": "publish", "channel": "feed", "data": {"n": 1}})
    for ws in (on_a, on_b):
        frame = await recv_until(ws, lambda f: f["type"] == "message")
        assert frame["data"] == {"n": 1}
    # REST on A, to a channel and to a user whose sockets sit on both servers.
    status, body, _ = await ahttp("POST", f"{a.url}/api/broadcast", token,
                                  {"channel": "feed", "message": {"type": "news", "data": {}}})
    assert status == 200 and body["success"] is True
    for ws in (on_a, on_b):
        assert (await recv_until(ws, lambda f: f["type"] == "news"))["offset"] == body["offset"]
    alice_a, _ = await connected(f"{a.ws_url}/ws/?token={alice_token}")
    alice_b, _ = await connected(f"{b.ws_url}/ws/?token={alice_token}")
    status, body, _ = await ahttp("POST", f"{b.url}/api/broadcast", token,
                                  {"user": "alice", "message": {"type": "notification",
                                                                "data": {"title": "hi"}}})
    assert status == 200
    for ws in (alice_a, alice_b):
        frame = await recv_until(ws, lambda f: f["type"] == "notification")
        assert frame["channel"] == "user:alice"
    for ws in (on_a, on_b, alice_a, alice_b):
        await ws.close()


async def test_a_rest_list_on_one_server_reaches_the_other_in_order_and_recovers(
        hub_server, redis_server, make_user):
    """A list body (one engine call: one Redis script round trip) posted to A while single
    requests publish to the same channel concurrently: B's subscriber gets every offset once,
    in order; the list's items keep their order; its user item reaches alice on B; a late
    subscriber on B recovers all of it from the Redis stream."""
    from asgiref.sync import sync_to_async

    token = await sync_to_async(broadcaster)(make_user)
    _alice, alice_token = await sync_to_async(make_user)("alice", False)
    a = hub_server(cluster_env(redis_server.url), name="hub-a")
    b = hub_server(cluster_env(redis_server.url), name="hub-b")
    on_b, _ = await connected(f"{b.ws_url}/ws/")
    subscribed = await subscribe(on_b, "feed")
    alice_b, _ = await connected(f"{b.ws_url}/ws/?token={alice_token}")
    body = [{"channel": "feed", "message": {"type": "item", "data": {"n": n}}} for n in range(300)]
    body[150] = {"user": "alice", "message": {"type": "note", "data": {"n": 150}}}
    body[151] = {"channel": "tiny", "message": {"type": "item", "data": {"n": 151}}}
    singles = [ahttp("POST", f"{a.url}/api/broadcast", token,
                     {"channel": "feed", "message": {"type": "single", "data": {"k": k}}})
               for k in range(10)]
    (status, answer, _), *single_answers = await asyncio.gather(
        ahttp("POST", f"{a.url}/api/broadcast", token, body), *singles)
    assert status == 200 and len(answer) == 300 and all(r["success"] for r in answer)
    listed = [r["offset"] for i, r in enumerate(answer) if i not in (150, 151)]
    assert listed == sorted(listed) and len(set(listed)) == 298
    assert (answer[150]["channel"], answer[151]["channel"]) == ("user:alice", "tiny")
    single_offsets = [r[1]["offset"] for r in single_answers]
    assert all(r[0] == 200 for r in single_answers)
    assert sorted(listed + single_offsets) == list(range(1, 309))  # none lost, none twice
    seen = [await recv_until(on_b, lambda f: f["type"] in ("item", "single")) for _ in range(308)]
    assert [f["offset"] for f in seen] == list(range(1, 309))
    assert [f["data"]["n"] for f in seen if f["type"] == "item"] == [
        n for n in range(300) if n not in (150, 151)]
    note = await recv_until(alice_b, lambda f: f["type"] == "note")
    assert (note["channel"], note["data"]) == ("user:alice", {"n": 150})
    late, _ = await connected(f"{b.ws_url}/ws/")
    reply = await subscribe(late, "feed", since=0, epoch=subscribed["epoch"])
    assert reply["type"] == "subscribed"
    replayed = [await recv_until(late, lambda f: f["type"] in ("item", "single")) for _ in range(308)]
    assert [f["offset"] for f in replayed] == list(range(1, 309))
    assert (await recv_until(late, lambda f: f["type"] == "recovered"))["recovered"] is True
    for ws in (on_b, alice_b, late):
        await ws.close()


async def test_recovery_under_continuous_publishing_exactly_once(hub_server, redis_server):
    """Clients hop between two servers, resubscribing with `since`, while a publisher keeps
    publishing: every offset arrives exactly once, in order, per client."""
    a = hub_server(cluster_env(redis_server.url), name="hub-a")
    b = hub_server(cluster_env(redis_server.url), name="hub-b")
    publisher, _ = await connected(f"{a.ws_url}/ws/")
    stop = asyncio.Event()
    published: list[int] = []

    async def publish_forever():
        seq = 0
        while not stop.is_set():
            seq += 1
            await send_json(publisher, {"type": "publish", "channel": "feed", "data": {"seq": seq}})
            await asyncio.sleep(0.002)  # pacing: a steady stream while clients hop

    async def drain_publisher():
        while True:
            frame = json.loads(await publisher.recv())
            if frame["type"] == "published":
                published.append(frame["offset"])

    async def hopping_client(index: int) -> list[int]:
        seen: list[int] = []
        servers = [a, b] if index % 2 else [b, a]
        for hop in range(6):
            ws, _ = await connected(f"{servers[hop % 2].ws_url}/ws/")
            extra = {"since": seen[-1]} if seen else {}
            reply = await subscribe(ws, "feed", **extra)
            assert reply["type"] == "subscribed"
            deadline = time.monotonic() + 0.3
            while time.monotonic() < deadline:
                frame = await recv_until(ws, lambda f: f["type"] in ("message", "recovered"))
                if frame["type"] == "recovered":
                    assert frame["recovered"] is True, frame
                else:
                    seen.append(frame["offset"])
            await ws.close()
        return seen

    pub = asyncio.create_task(publish_forever())
    drain = asyncio.create_task(drain_publisher())
    for _ in range(1000):  # until publishing is under way (answers arrive), not for a fixed time
        if len(published) >= 20:
            break
        await asyncio.sleep(0.01)
    assert len(published) >= 20, "the publisher never got going"
    results = await asyncio.gather(*(hopping_client(i) for i in range(4)))
    stop.set()
    await pub
    drain.cancel()
    for seen in results:
        assert len(seen) > 50
        assert seen == list(range(seen[0], seen[0] + len(seen))), "gap or duplicate"
    await publisher.close()


async def test_recovery_false_when_history_too_short_or_epoch_changes(hub_server, redis_server):
    server = hub_server(cluster_env(redis_server.url))
    ws, _ = await connected(f"{server.ws_url}/ws/")
    first = await subscribe(ws, "tiny")
    for n in range(6):
        await send_json(ws, {"type": "publish", "channel": "tiny", "data": {"n": n}})
    await recv_until(ws, lambda f: f.get("offset") == first["offset"] + 6 and f["type"] == "message")
    await ws.close()
    again, _ = await connected(f"{server.ws_url}/ws/")
    await subscribe(again, "tiny", since=first["offset"])  # 6 behind, 3 kept
    assert (await recv_until(again, lambda f: f["type"] == "recovered"))["recovered"] is False
    await again.close()
    okay, _ = await connected(f"{server.ws_url}/ws/")
    await subscribe(okay, "tiny", since=first["offset"] + 4)
    replayed = [await recv_until(okay, lambda f: f["type"] in ("message", "recovered"))
                for _ in range(3)]
    assert [f["type"] for f in replayed] == ["message", "message", "recovered"]
    assert replayed[-1] == {"type": "recovered", "channel": "tiny", "recovered": True, "missed": 2}
    await okay.close()
    stale, _ = await connected(f"{server.ws_url}/ws/")
    await subscribe(stale, "tiny", since=first["offset"] + 6, epoch="not-the-epoch")
    assert (await recv_until(stale, lambda f: f["type"] == "recovered"))["recovered"] is False
    await stale.close()


async def test_presence_is_cluster_wide_and_sigkill_drops_out(hub_server, redis_server, make_user):
    from asgiref.sync import sync_to_async

    _root, staff = await sync_to_async(make_user)("root", True)  # health names channels to staff only
    a = hub_server(cluster_env(redis_server.url), name="hub-a")
    b = hub_server(cluster_env(redis_server.url), name="hub-b")
    sockets = [(await connected(f"{a.ws_url}/ws/a{i}"))[0] for i in range(2)]
    sockets += [(await connected(f"{b.ws_url}/ws/b{i}"))[0] for i in range(3)]
    for ws in sockets:
        await subscribe(ws, "feed")
    health = await _wait_for_health(a, lambda h: h["clients"] == 5, token=staff)
    assert health["subscriptions"]["feed"] == 5 and health["active_connections"] == 5
    # A client id is unique across the cluster.
    dup = await connect(f"{a.ws_url}/ws/b0")
    assert await expect_close(dup) == 4009
    b.kill()  # SIGKILL: no goodbye; its presence expires after two heartbeats (2 s)
    killed_at = time.monotonic()
    health = await _wait_for_health(a, lambda h: h["clients"] == 2, timeout=10, token=staff)
    assert time.monotonic() - killed_at <= 2 * 1.0 + 1.5  # two heartbeats, plus one sweep
    assert health["subscriptions"]["feed"] == 2
    for ws in sockets[:2]:
        await ws.close()


async def _wait_for_health(server, predicate, timeout=10.0, token=None) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status, body, _ = await ahttp("GET", f"{server.url}/api/health", token)
        if status == 200 and predicate(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"health never matched: {status} {body}")
        await asyncio.sleep(0.2)


async def test_redis_outage_and_recovery(hub_server, redis_server, make_user):
    from asgiref.sync import sync_to_async

    token = await sync_to_async(broadcaster)(make_user)
    a = hub_server(cluster_env(redis_server.url), name="hub-a")
    b = hub_server(cluster_env(redis_server.url), name="hub-b")
    on_a, _ = await connected(f"{a.ws_url}/ws/")
    on_b, _ = await connected(f"{b.ws_url}/ws/")
    sub = await subscribe(on_b, "feed")
    await send_json(on_a, {"type": "publish", "channel": "feed", "data": {"n": 0}})
    last = (await recv_until(on_b, lambda f: f["type"] == "message"))["offset"]

    redis_server.stop()
    status, body, seconds = await ahttp("POST", f"{a.url}/api/broadcast", token,
                                        {"channel": "feed", "message": {"type": "x", "data": {}}})
    assert status == 503 and seconds < 2.0, (status, body, seconds)
    status, body, _ = await ahttp("GET", f"{a.url}/api/health")
    assert status == 503 and body["status"] == "unhealthy" and "redis" in json.dumps(body).lower()
    await send_json(on_a, {"type": "publish", "channel": "feed", "data": {"n": 1}, "id": 1})
    reply = await recv_until(on_a, lambda f: f.get("id") == 1)
    assert reply["type"] == "error"  # never "published" for what did not happen
    for ws in (on_a, on_b):  # both processes are up and keep their sockets
        await send_json(ws, {"type": "ping", "id": "up"})
        assert (await recv_until(ws, lambda f: f["type"] == "pong"))["id"] == "up"

    redis_server.start()  # same port, empty: the history is gone, so is the epoch
    status, body = 0, None
    deadline = time.monotonic() + 15
    while status != 200 and time.monotonic() < deadline:
        await asyncio.sleep(0.3)
        status, body, _ = await ahttp("POST", f"{a.url}/api/broadcast", token,
                                      {"channel": "feed", "message": {"type": "back", "data": {}}})
    assert status == 200, body
    frame = await recv_until(on_b, lambda f: f["type"] == "back", timeout=15)
    assert frame["channel"] == "feed"
    again, _ = await connected(f"{b.ws_url}/ws/")
    await subscribe(again, "feed", since=last, epoch=sub["epoch"])
    assert (await recv_until(again, lambda f: f["type"] == "recovered"))["recovered"] is False
    for ws in (on_a, on_b, again):
        await ws.close()


async def test_slow_reader_is_closed_and_others_keep_up(hub_server, redis_server):
    server = hub_server(cluster_env(redis_server.url, HUB_MAX_QUEUED_BYTES="65536"))
    fast, _ = await connected(f"{server.ws_url}/ws/")
    await subscribe(fast, "feed")
    slow = await asyncio.to_thread(_raw_subscriber, server.port)  # never reads again
    publisher, _ = await connected(f"{server.ws_url}/ws/")
    count, pad = 400, "x" * 20_000
    received = 0

    async def read_fast():
        nonlocal received
        while received < count:
            await recv_until(fast, lambda f: f["type"] == "message")
            received += 1

    reader = asyncio.create_task(read_fast())
    for n in range(count):
        await send_json(publisher, {"type": "publish", "channel": "feed", "data": {"n": n, "pad": pad}})
        if n % 20 == 0:
            await asyncio.sleep(0.01)  # pacing: the fast reader keeps up, the slow one cannot
    await asyncio.wait_for(reader, 60)
    assert received == count
    # The slow one is gone. Health reads the processes' presence records, refreshed every
    # half heartbeat (0.5 s here): allow a few reports for the close to show.
    deadline = time.monotonic() + 3
    while True:
        status, health, _ = await ahttp("GET", f"{server.url}/api/health")
        if health["clients"] == 2 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.25)
    assert health["clients"] == 2
    log = server.log_text()
    assert "slow consumer" in log
    slow.close()
    await fast.close()
    await publisher.close()


def _raw_subscriber(port: int) -> socket.socket:
    """A client that handshakes, subscribes, then never reads: its buffers fill up."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall((f"GET /ws/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    sock.recv(4096)
    payload = json.dumps({"type": "subscribe", "channel": "feed"}).encode()
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    sock.settimeout(10)  # until the server answers "subscribed", not for a fixed time
    seen = b""
    while b"subscribed" not in seen:
        chunk = sock.recv(4096)
        assert chunk, f"closed before subscribing: {seen!r}"
        seen += chunk
    sock.settimeout(None)
    return sock


async def test_group_membership_cannot_expire(hub_server, redis_server):
    """channels-redis' default layer keeps group members in sorted sets that expire after
    ``group_expiry`` (24 h): a socket open longer would silently stop receiving. The hub's
    membership is a live SUBSCRIBE of the pub/sub layer: no key, so nothing to expire
    (and the node re-adds its groups hourly anyway)."""
    import redis

    server = hub_server(cluster_env(redis_server.url))
    ws, _ = await connected(f"{server.ws_url}/ws/")
    await subscribe(ws, "feed")
    client = redis.Redis.from_url(redis_server.url)
    channels = [c.decode() for c in client.pubsub_channels("*__group__*")]
    feed = [c for c in channels if c.endswith(".c.feed")]
    assert feed and client.pubsub_numsub(feed[0])[0][1] == 1
    keys = [k.decode() for k in client.keys("*")]
    assert not [k for k in keys if "group" in k], keys  # no membership record with a TTL
    await ws.close()
