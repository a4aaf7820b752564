"""Issue 11, point 3: per-user notifications only on per-user channels.

The attacker is bob, a plain user: he replays the shared ``notifications`` channel from offset
0 hoping to read alice's job notifications (job name, exit code), tries to subscribe to
``user:alice``, and tries to push a notification text into alice's socket or everyone's.
Everything runs against a real daphne; alice's notification is produced by the Slurm
monitor's real HTTP sink with its own service account.

Absence is shown without timeouts: publications on one channel keep their order, so a
sentinel (a cluster-wide notification sent last) that arrives first proves nothing came before
it; a ``since`` replay ends with ``recovered``, so the frames before it are the whole history.
"""

from __future__ import annotations

import asyncio

import pytest
import requests
from asgiref.sync import sync_to_async

from slurm_monitor.events import Notification
from slurm_monitor.sinks import build_sink
from tests.wsutil import connected, recv_until, send_json

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "secret-protein-model"


@pytest.fixture(autouse=True)
async def _close_worker_thread_connections():
    """ORM calls through sync_to_async run in asgiref's worker thread: close its connection,
    or PostgreSQL cannot drop the test database."""
    yield
    from django.db import connections

    await sync_to_async(connections.close_all)()


@pytest.fixture
def users(make_user):
    """alice and bob (plain users) and ops (a person with hub.broadcast): tokens by name."""
    from django.contrib.auth.models import Permission

    tokens = {name: make_user(name)[1] for name in ("alice", "bob")}
    ops, tokens["ops"] = make_user("ops")
    ops.user_permissions.add(Permission.objects.get(codename="broadcast", content_type__app_label="hub"))
    return tokens


async def socket(server, token: str, *channels: str, since: int | None = None):
    ws, _ = await connected(f"{server.ws_url}/ws/?token={token}")
    for channel in channels:
        frame = {"type": "subscribe", "channel": channel}
        if since is not None:
            frame["since"] = since
        await send_json(ws, frame)
        await recv_until(ws, lambda f, c=channel: f["type"] in ("subscribed", "error") and f.get("channel") == c)
    return ws


async def post(server, path: str, token: str, body: dict) -> requests.Response:
    return await asyncio.to_thread(requests.post, server.url + path, json=body, timeout=10,
                                   headers={"Authorization": f"Token {token}"})


async def listed(server, token: str) -> dict:
    response = await asyncio.to_thread(requests.get, server.url + "/api/notifications", timeout=10,
                                       headers={"Authorization": f"Token {token}"})
    assert response.status_code == 200, response.text
    return response.json()


async def notifications_until(ws, sentinel_id: int) -> list[dict]:
    """Every notification frame up to and including the one with ``sentinel_id``."""
    seen: list[dict] = []
    while not seen or seen[-1]["data"].get("id") != sentinel_id:
        seen.append(await recv_until(ws, lambda f: f["type"] == "notification"))
    return seen


def job_failed_for_alice() -> Notification:
    return Notification("job_failed", f"Job 12 ({SECRET}) failed", f"Job 12 ({SECRET}) failed: exit code 3.",
                        "error", {"job_id": "12", "name": SECRET, "exit_code": 3, "nodes": "gpu07"},
                        user="alice")


async def test_bob_replaying_notifications_sees_nothing_of_alices(hub_server, users):
    server = hub_server()
    alice = await socket(server, users["alice"], "user:alice")
    monitor = await build_sink("http", server.url, "slurm-monitor")  # the monitor's real road
    await monitor.notify(job_failed_for_alice())
    mine = await recv_until(alice, lambda f: f["type"] == "notification")
    assert mine["channel"] == "user:alice" and mine["data"]["user"] == "alice"
    assert SECRET in mine["data"]["title"]  # alice does get it: the test below can fail

    # bob replays the shared channel's whole history: nothing of alice's is in it
    bob = await socket(server, users["bob"])
    await send_json(bob, {"type": "subscribe", "channel": "notifications", "since": 0})
    replay = []
    while True:
        frame = await recv_until(bob, lambda f: f["type"] not in ("subscribed",))
        if frame["type"] == "recovered":
            break
        replay.append(frame)
    assert frame["recovered"] is True
    assert not [f for f in replay if SECRET in str(f) or (f.get("data") or {}).get("user") == "alice"]

    # ... nor can he follow her own channel
    await send_json(bob, {"type": "subscribe", "channel": "user:alice", "id": 1})
    refused = await recv_until(bob, lambda f: f.get("id") == 1)
    assert (refused["type"], refused["code"]) == ("error", "forbidden")

    # live: another of alice's, then a cluster-wide one; bob's first notification is the latter
    await monitor.notify(job_failed_for_alice())
    await recv_until(alice, lambda f: f["type"] == "notification")
    sentinel = await post(server, "/api/notifications", users["ops"],
                          {"cluster_wide": True, "type": "maintenance", "title": "Login node reboot at 18:00"})
    assert sentinel.status_code == 201, sentinel.text
    received = await notifications_until(bob, sentinel.json()["id"])
    assert [(f["channel"], f["data"]["id"]) for f in received] == [("notifications", sentinel.json()["id"])]
    assert received[0]["data"]["user"] is None
    for ws in (alice, bob):
        await ws.close()
    assert all(n["user"] != "alice" for n in (await listed(server, users["bob"]))["results"])


async def test_bob_cannot_notify_alice_or_everyone(hub_server, users):
    server = hub_server()
    alice = await socket(server, users["alice"], "notifications", "user:alice")
    bob = await socket(server, users["bob"], "notifications", "user:bob")
    forged = {"type": "job_failed", "title": "Your job failed: log in at evil.example to see why"}
    for body in ({**forged, "user": "alice"}, {**forged, "cluster_wide": True}):
        refused = await post(server, "/api/notifications", users["bob"], body)
        assert refused.status_code == 403, body
        assert refused.json()["code"] == "permission_denied"
    refused = await post(server, "/api/broadcast", users["bob"],
                         {"user": "alice", "message": {"type": "notification", "data": forged}})
    assert refused.status_code == 403
    # to himself he may: it reaches user:bob and no one else
    own = await post(server, "/api/notifications", users["bob"], {"type": "note", "title": "note to self"})
    assert own.status_code == 201 and own.json()["user"] == "bob"
    got = await recv_until(bob, lambda f: f["type"] == "notification")
    assert (got["channel"], got["data"]["id"]) == ("user:bob", own.json()["id"])

    sentinel = await post(server, "/api/notifications", users["ops"],
                          {"cluster_wide": True, "type": "maintenance", "title": "Scheduler restart"})
    assert sentinel.status_code == 201, sentinel.text
    sid = sentinel.json()["id"]
    for ws in (alice, bob):  # nothing of bob's reached anyone's socket before the sentinel
        received = await notifications_until(ws, sid)
        assert [(f["channel"], f["data"]["id"]) for f in received] == [("notifications", sid)]
    await alice.close()
    await bob.close()
    alice_list = await listed(server, users["alice"])
    assert [n["id"] for n in alice_list["results"]] == [sid]
    assert "evil.example" not in str(alice_list)


async def test_a_cluster_wide_notification_reaches_everyone_and_stays_listed(hub_server, users):
    server = hub_server()
    sockets = {name: await socket(server, users[name], "notifications") for name in ("alice", "bob")}
    made = await post(server, "/api/notifications", users["ops"],
                      {"cluster_wide": True, "type": "node_down", "title": "Node cn01 is down",
                       "severity": "error", "data": {"node": "cn01"}})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["user"] is None
    for name, ws in sockets.items():
        frame = await recv_until(ws, lambda f: f["type"] == "notification")
        assert (frame["channel"], frame["data"]) == ("notifications", body), name
        await ws.close()
    # after the fact (a reload): REST lists it for both, each with their own read state
    for name in ("alice", "bob"):
        got = await listed(server, users[name])
        assert [(n["id"], n["user"], n["read"]) for n in got["results"]] == [(body["id"], None, False)]
        assert got["unread"] == 1
    read = await post(server, f"/api/notifications/{body['id']}/read", users["alice"], {})
    assert read.status_code == 200 and read.json()["read"] is True
    assert (await listed(server, users["alice"]))["unread"] == 0
    assert (await listed(server, users["bob"]))["unread"] == 1
    # the monitor's own cluster-wide notifications (a node drained) take the same road
    monitor = await build_sink("http", server.url, "slurm-monitor")
    await monitor.notify(Notification("node_drained", "Node cn02 drained", "Node cn02 is drained.",
                                      "warning", {"node": "cn02"}))
    titles = [n["title"] for n in (await listed(server, users["bob"]))["results"]]
    assert titles == ["Node cn02 drained", "Node cn01 is down"]
