"""Notifications: the service (persist + push live), the REST endpoints, privacy.

Per-user notifications go to ``user:<name>`` only; cluster-wide ones (``user`` null) to
``notifications`` only, persisted too, listed for every user with a per-user read state."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Permission
from django.core.cache import cache
from rest_framework.test import APIClient

from hub.notify import notifications as svc
from hub import publish as hub_publish
from hub.engine.errors import HubUnavailable
from hub.models import Notification, NotificationRead

@pytest.fixture(autouse=True)
async def _close_worker_thread_connections():
    """sync_to_async runs ORM calls in asgiref's worker thread, whose connection would
    otherwise stay open and keep PostgreSQL from dropping the test database."""
    yield
    from django.db import connections

    await sync_to_async(connections.close_all)()


NOTIFICATION_KEYS = {"id", "user", "type", "title", "message", "severity", "data", "read", "created"}


@pytest.fixture(autouse=True)
def _fresh():
    cache.clear()


@pytest.fixture
def pushed(monkeypatch):
    """Capture live pushes instead of publishing: [(channel, event, data)]."""
    sent: list[tuple[str, str, dict]] = []
    monkeypatch.setattr(hub_publish, "publish_sync", lambda c, e, d: sent.append((c, e, d)) or len(sent))
    monkeypatch.setattr(hub_publish, "send_to_user_sync",
                        lambda u, e, d: sent.append((f"user:{u}", e, d)) or len(sent))
    return sent


def client_for(username: str, *, broadcast: bool = False) -> APIClient:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username=username)
    if broadcast:
        user.user_permissions.add(Permission.objects.get(codename="broadcast", content_type__app_label="hub"))
    client = APIClient()
    client.force_authenticate(user)
    return client


# --- the service -----------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_users_notification_is_persisted_and_pushed_on_their_channel_only(pushed):
    made = svc.create_notification("alice", "job_failed", "Job 12 failed", "exit code 1",
                                   severity="error", data={"job_id": "12"})
    assert set(made) == NOTIFICATION_KEYS
    assert made["user"] == "alice" and made["read"] is False and made["created"].endswith("Z")
    row = Notification.objects.get(id=made["id"])
    assert (row.username, row.type, row.title, row.message, row.severity, row.data) == (
        "alice", "job_failed", "Job 12 failed", "exit code 1", "error", {"job_id": "12"})
    assert pushed == [("user:alice", "notification", made)]  # never on the shared channel


@pytest.mark.django_db
def test_a_cluster_wide_notification_is_persisted_and_pushed_on_notifications_only(pushed):
    made = svc.create_notification(None, "node_down", "Node cn01 is down", "", severity="error",
                                   data={"node": "cn01"})
    assert set(made) == NOTIFICATION_KEYS and made["user"] is None and made["read"] is False
    assert Notification.objects.get(id=made["id"]).username is None
    assert pushed == [("notifications", "notification", made)]


@pytest.mark.django_db
def test_defaults_and_unknown_users_are_fine(pushed):
    made = svc.create_notification("slurm-only-user", "job_done", "Done", "")
    assert made["severity"] == "info" and made["data"] == {} and made["message"] == ""


@pytest.mark.django_db
@pytest.mark.parametrize("kwargs, field", [
    ({"severity": "panic"}, "severity"),
    ({"title": ""}, "title"),
    ({"title": "x" * 201}, "title"),
    ({"type": 5}, "type"),
    ({"data": [1, 2]}, "data"),
    ({"data": {"blob": "x" * (svc.DATA_MAX_BYTES + 1)}}, "data"),
    ({"data": {"bad": object()}}, "data"),
    ({"username": ""}, "user"),
    ({"title": "nul\x00"}, "title"),
    ({"data": {"k": ["nul\x00"]}}, "data"),
    ({"data": {"nul\x00": 1}}, "data"),
])
def test_bad_input_raises_naming_the_field(pushed, kwargs, field):
    args = {"username": "alice", "type": "t", "title": "T", "message": "m", **kwargs}
    with pytest.raises(svc.NotificationError) as info:
        svc.create_notification(**args)
    assert info.value.field == field
    assert not Notification.objects.exists() and not pushed


@pytest.mark.django_db
def test_a_failed_push_still_stores_the_notification(monkeypatch):
    def down(*args):
        raise HubUnavailable("redis")

    monkeypatch.setattr(hub_publish, "publish_sync", down)
    monkeypatch.setattr(hub_publish, "send_to_user_sync", down)
    made = svc.create_notification("alice", "t", "T", "m")
    assert Notification.objects.filter(id=made["id"]).exists()


@pytest.mark.django_db
def test_listing_is_unread_first_then_newest_and_private(pushed):
    old = svc.create_notification("alice", "t", "old", "")
    mid = svc.create_notification("alice", "t", "mid", "")
    new = svc.create_notification("alice", "t", "new", "")
    svc.create_notification("bob", "t", "bob's", "")
    assert svc.mark_read("alice", new["id"])["read"] is True
    listed = svc.list_notifications("alice")
    assert [n["title"] for n in listed["results"]] == ["mid", "old", "new"]
    assert (listed["count"], listed["unread"]) == (3, 2)
    assert [n["title"] for n in svc.list_notifications("alice", unread_only=True)["results"]] == ["mid", "old"]
    assert svc.mark_read("bob", old["id"]) is None
    assert svc.get_notification("bob", mid["id"]) is None
    assert svc.mark_all_read("alice") == 2
    assert svc.list_notifications("alice")["unread"] == 0


@pytest.mark.django_db
def test_cluster_wide_ones_are_listed_for_everyone_with_their_own_read_state(pushed):
    mine = svc.create_notification("alice", "t", "alice's", "")
    wide = svc.create_notification(None, "node_down", "cn01 down", "")
    later = svc.create_notification(None, "maintenance", "maintenance tonight", "")
    assert [n["title"] for n in svc.list_notifications("alice")["results"]] == [
        "maintenance tonight", "cn01 down", "alice's"]
    assert [n["title"] for n in svc.list_notifications("bob")["results"]] == ["maintenance tonight", "cn01 down"]
    # bob reading a cluster-wide one reads it for bob only
    assert svc.mark_read("bob", wide["id"])["read"] is True
    assert svc.get_notification("bob", wide["id"])["read"] is True
    assert svc.get_notification("alice", wide["id"])["read"] is False
    assert Notification.objects.get(id=wide["id"]).read is False
    assert svc.list_notifications("bob")["unread"] == 1
    assert [n["id"] for n in svc.list_notifications("bob")["results"]] == [later["id"], wide["id"]]
    assert svc.mark_read("bob", wide["id"])["read"] is True  # twice is fine
    assert svc.mark_read("bob", mine["id"]) is None  # still private
    assert svc.mark_all_read("alice") == 3
    assert svc.mark_all_read("alice") == 0
    assert svc.list_notifications("alice")["unread"] == 0 and svc.list_notifications("bob")["unread"] == 1
    assert NotificationRead.objects.filter(username="alice").count() == 2


# --- REST ------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_rest_lists_only_my_notifications_unread_first(pushed):
    alice = client_for("alice")
    a1 = svc.create_notification("alice", "t", "first", "")
    a2 = svc.create_notification("alice", "t", "second", "")
    svc.create_notification("bob", "t", "not yours", "")
    svc.mark_read("alice", a2["id"])
    response = alice.get("/api/notifications")
    assert response.status_code == 200
    body = response.json()
    assert (body["count"], body["unread"]) == (2, 1)
    assert [n["id"] for n in body["results"]] == [a1["id"], a2["id"]]
    assert set(body["results"][0]) == NOTIFICATION_KEYS
    only_unread = alice.get("/api/notifications/", {"unread": "true", "limit": 1}).json()
    assert [n["id"] for n in only_unread["results"]] == [a1["id"]]
    paged = alice.get("/api/notifications", {"limit": 1, "offset": 1}).json()
    assert [n["id"] for n in paged["results"]] == [a2["id"]]


@pytest.mark.django_db
@pytest.mark.parametrize("query, field", [({"limit": 0}, "limit"), ({"limit": "many"}, "limit"),
                                          ({"offset": -1}, "offset"), ({"unread": "perhaps"}, "unread")])
def test_rest_bad_query_is_400_naming_it(query, field):
    response = client_for("alice").get("/api/notifications", query)
    assert response.status_code == 400
    assert field in response.json()["fields"]


@pytest.mark.django_db
def test_rest_mark_read_only_for_the_owner(pushed):
    alice, bob = client_for("alice"), client_for("bob")
    made = svc.create_notification("alice", "t", "T", "")
    assert bob.post(f"/api/notifications/{made['id']}/read").status_code == 404
    assert bob.get(f"/api/notifications/{made['id']}").status_code == 404
    response = alice.post(f"/api/notifications/{made['id']}/read/")
    assert response.status_code == 200 and response.json()["read"] is True
    assert alice.get(f"/api/notifications/{made['id']}").json()["read"] is True
    for bad in ("999999", "abc", "0", "-1", "99999999999999999999999"):
        response = alice.post(f"/api/notifications/{bad}/read")
        assert response.status_code == 404, bad
        assert response.json()["code"] == "not_found"


@pytest.mark.django_db
def test_rest_mark_all_read(pushed):
    alice = client_for("alice")
    for title in ("a", "b"):
        svc.create_notification("alice", "t", title, "")
    svc.create_notification("bob", "t", "b", "")
    assert alice.post("/api/notifications/read").json() == {"marked": 2}
    assert Notification.objects.filter(username="bob", read=False).count() == 1


@pytest.mark.django_db
def test_rest_create_for_myself_and_for_others_with_permission(pushed):
    alice, svc_user = client_for("alice"), client_for("monitor", broadcast=True)
    mine = alice.post("/api/notifications", {"type": "reminder", "title": "Hi"}, format="json")
    assert mine.status_code == 201 and mine.json()["user"] == "alice"
    refused = alice.post("/api/notifications", {"user": "bob", "type": "t", "title": "x"}, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    made = svc_user.post("/api/notifications", {"user": "bob", "type": "job_failed", "title": "Job failed",
                                                "message": "oom", "severity": "error",
                                                "data": {"job_id": "7"}}, format="json")
    assert made.status_code == 201
    assert made.json()["user"] == "bob" and made.json()["data"] == {"job_id": "7"}
    assert [c for c, _e, _d in pushed] == ["user:alice", "user:bob"]


@pytest.mark.django_db
def test_rest_cluster_wide_needs_the_broadcast_permission(pushed):
    alice, svc_user = client_for("alice"), client_for("monitor", broadcast=True)
    body = {"cluster_wide": True, "type": "maintenance", "title": "Down at 18:00"}
    refused = alice.post("/api/notifications", body, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    assert not Notification.objects.exists() and not pushed
    made = svc_user.post("/api/notifications", body, format="json")
    assert made.status_code == 201 and made.json()["user"] is None
    assert [c for c, _e, _d in pushed] == ["notifications"]
    listed = alice.get("/api/notifications").json()
    assert [n["id"] for n in listed["results"]] == [made.json()["id"]] and listed["unread"] == 1
    assert alice.post(f"/api/notifications/{made.json()['id']}/read").json()["read"] is True
    assert svc_user.get(f"/api/notifications/{made.json()['id']}").json()["read"] is False
    both = svc_user.post("/api/notifications", {**body, "user": "bob"}, format="json")
    assert both.status_code == 400 and "cluster_wide" in both.json()["fields"]


@pytest.mark.django_db
@pytest.mark.parametrize("body, field", [
    ({"title": "x"}, "type"), ({"type": "t"}, "title"), ({"type": "t", "title": "x", "severity": "meh"}, "severity"),
    ({"type": "t", "title": "x", "data": "text"}, "data"), ({"type": "t", "title": 3}, "title"),
    ({"type": "t", "title": "x", "data": {"b": "x" * (svc.DATA_MAX_BYTES + 1)}}, "data"),
    ({"type": "t", "title": "x", "data": {"b": "\x00"}}, "data"),  # PostgreSQL cannot store it
    ({"type": "t", "title": "x\x00"}, "title"),
    # A JSON boolean only: DRF's BooleanField would take these (schemathesis found 0.0 accepted).
    ({"type": "t", "title": "x", "cluster_wide": 0.0}, "cluster_wide"),
    ({"type": "t", "title": "x", "cluster_wide": 1}, "cluster_wide"),
    ({"type": "t", "title": "x", "cluster_wide": "true"}, "cluster_wide"),
    ({"type": "t", "title": "x", "cluster_wide": None}, "cluster_wide"),
])
def test_rest_create_bad_input_is_400(pushed, body, field):
    response = client_for("alice").post("/api/notifications", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"]


@pytest.mark.django_db
def test_rest_needs_authentication():
    for method, path in (("get", "/api/notifications"), ("post", "/api/notifications/1/read"),
                         ("post", "/api/notifications/read"), ("get", "/api/notifications/1")):
        response = getattr(APIClient(), method)(path)
        assert response.status_code == 401, path


# --- live, through the real engine -------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
async def test_created_notification_reaches_the_users_socket_live(make_user):
    from hub.engine.node import reset_node
    from hub.routing import build_websocket_application

    reset_node()
    channel_layers.backends.clear()
    _user, token = await sync_to_async(make_user)("alice")
    comm = WebsocketCommunicator(build_websocket_application(), f"/ws/?token={token}")
    assert (await comm.connect())[0]

    async def frame(kind):
        while True:
            got = json.loads(await comm.receive_from(5))
            if got["type"] == kind:
                return got

    await frame("connected")
    await comm.send_to(text_data=json.dumps({"type": "subscribe", "channels": ["notifications", "user:alice"]}))
    for _ in range(2):
        await frame("subscribed")
    made = await sync_to_async(svc.create_notification)("alice", "job_failed", "Job 3 failed", "",
                                                        severity="warning", data={"job_id": "3"})
    got = await frame("notification")
    assert (got["channel"], got["data"]) == ("user:alice", made)
    wide = await sync_to_async(svc.create_notification)(None, "node_down", "cn01 down", "")
    # Publications on one channel keep their order: had alice's gone out on `notifications`
    # too, it would come before the cluster-wide one there.
    got = await frame("notification")
    assert (got["channel"], got["data"]) == ("notifications", wide)
    await comm.disconnect()
    await asyncio.sleep(0)
    reset_node()


@pytest.mark.django_db(transaction=True)
async def test_rest_created_notification_is_pushed_by_a_real_server(hub_server, make_user):
    import requests

    from tests.wsutil import connected, recv_until, send_json

    server = hub_server()
    _alice, alice_token = await sync_to_async(make_user)("alice")
    monitor, monitor_token = await sync_to_async(make_user)("monitor")
    perm = await sync_to_async(Permission.objects.get)(codename="broadcast", content_type__app_label="hub")
    await sync_to_async(monitor.user_permissions.add)(perm)
    ws, _ = await connected(f"{server.ws_url}/ws/?token={alice_token}")
    await send_json(ws, {"type": "subscribe", "channel": "user:alice"})
    await recv_until(ws, lambda f: f["type"] == "subscribed")
    response = await asyncio.to_thread(
        requests.post, f"{server.url}/api/notifications", timeout=10,
        headers={"Authorization": f"Token {monitor_token}"},
        json={"user": "alice", "type": "job_failed", "title": "Job 5 failed", "severity": "error"})
    assert response.status_code == 201, response.text
    frame = await recv_until(ws, lambda f: f["type"] == "notification")
    assert frame["channel"] == "user:alice" and frame["data"] == response.json()
    listed = await asyncio.to_thread(requests.get, f"{server.url}/api/notifications", timeout=10,
                                     headers={"Authorization": f"Token {alice_token}"})
    assert [n["title"] for n in listed.json()["results"]] == ["Job 5 failed"]
    await ws.close()


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["offset=", "unread=", "limit=", "offset=&limit=151&unread="])
def test_empty_query_parameters_are_refused_naming_them(query):
    """DRF would read ``?offset=`` as absent; the schema says integer: a 400 naming it."""
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    user = get_user_model().objects.create_user("emptyq", password="pw-for-tests-only")
    client = APIClient()
    client.force_authenticate(user)
    response = client.get(f"/api/notifications?{query}")
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {part.split("=")[0] for part in query.split("&") if part.endswith("=")}
