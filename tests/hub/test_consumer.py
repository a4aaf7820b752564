"""Consumer tests in-process with Channels' WebsocketCommunicator (no server, real layer)."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from hub import publish as hub_publish
from hub.conf import get_policies
from hub.engine.node import reset_node
from hub.routing import build_websocket_application

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_engine():
    reset_node()
    channel_layers.backends.clear()
    get_policies.cache_clear()
    yield
    reset_node()
    get_policies.cache_clear()


def hub_settings(**overrides):
    from django.conf import settings

    return override_settings(HUB={**settings.HUB, **overrides})


async def open_socket(path="/ws/", headers=None):
    comm = WebsocketCommunicator(build_websocket_application(), path, headers=headers or [])
    connected, _ = await comm.connect()
    assert connected
    return comm


async def recv(comm, timeout=3):
    return json.loads(await comm.receive_from(timeout))


async def until(comm, kind, timeout=3):
    while True:
        frame = await recv(comm, timeout)
        if frame["type"] == kind:
            return frame


@hub_settings(REQUIRE_AUTH=False)
async def test_connected_frame_has_exact_keys():
    comm = await open_socket("/ws/test_client_001")
    frame = await recv(comm)
    assert set(frame) == {"type", "client_id", "user", "server", "heartbeat_interval", "timestamp"}
    assert frame["client_id"] == "test_client_001" and frame["user"] is None
    await comm.disconnect()


@hub_settings(REQUIRE_AUTH=False)
async def test_subscribers_receive_publications_encoded_once_in_request_order():
    comm = await open_socket("/")
    await until(comm, "connected")
    await comm.send_json_to({"type": "subscribe", "channels": ["jobs", "notifications"], "id": 9})
    first, second = await recv(comm), await recv(comm)
    assert [first["channel"], second["channel"]] == ["jobs", "notifications"]
    assert first["type"] == second["type"] == "subscribed" and first["id"] == 9
    await hub_publish.publish("jobs", "job_state_changed", {"job_id": "1", "state": "RUNNING"})
    await hub_publish.publish("notifications", "notification", {"title": "done"})
    got = [await recv(comm), await recv(comm)]
    assert [(f["type"], f["channel"]) for f in got] == [
        ("job_state_changed", "jobs"), ("notification", "notifications")]
    assert set(got[0]) == {"type", "channel", "offset", "timestamp", "data"}
    assert got[0]["offset"] == first["offset"] + 1
    await comm.disconnect()


@hub_settings(REQUIRE_AUTH=False)
async def test_unsubscribe_stops_delivery():
    comm = await open_socket()
    await until(comm, "connected")
    await comm.send_json_to({"type": "subscribe", "channel": "jobs"})
    await until(comm, "subscribed")
    await comm.send_json_to({"type": "unsubscribe", "channel": "jobs", "id": "u"})
    assert await recv(comm) == {"type": "unsubscribed", "channel": "jobs", "id": "u"}
    await hub_publish.publish("jobs", "job_removed", {"job_id": "1"})
    await comm.send_json_to({"type": "ping"})
    assert (await recv(comm))["type"] == "pong"  # the publication never arrived before it
    await comm.disconnect()


@hub_settings(REQUIRE_AUTH=False)
async def test_handler_failure_answers_internal_error_and_socket_stays():
    from hub.socket.handlers import _handlers, register

    @register("explode")
    async def explode(ctx, frame):
        raise RuntimeError("boom")

    try:
        comm = await open_socket()
        await until(comm, "connected")
        await comm.send_json_to({"type": "explode", "id": 4})
        frame = await recv(comm)
        assert (frame["type"], frame["code"], frame["id"]) == ("error", "internal_error", 4)
        await comm.send_json_to({"type": "ping", "id": 5})
        assert (await recv(comm))["id"] == 5
        await comm.disconnect()
    finally:
        _handlers.pop("explode", None)


@pytest.fixture
def chat_registered():
    """The chat example is opt-in (HUB_HANDLER_MODULES=hub.socket.chat): register it for a test."""
    from hub.socket.chat import handle_chat_message
    from hub.socket.handlers import _handlers

    _handlers["chat_message"] = handle_chat_message
    yield
    _handlers.pop("chat_message", None)


@hub_settings(REQUIRE_AUTH=False, CHANNELS={"chat.*": {"subscribe": "anyone", "publish": "anyone"}})
async def test_chat_message_broadcasts_to_channel_subscribers(chat_registered):
    alice, bob = await open_socket(), await open_socket()
    for comm in (alice, bob):
        await until(comm, "connected")
        await comm.send_json_to({"type": "subscribe", "channel": "chat.lobby"})
        await until(comm, "subscribed")
    await alice.send_json_to({"type": "chat_message", "channel": "chat.lobby", "message": "hi",
                              "id": 1})
    sent = await until(alice, "chat_message_sent")
    assert sent["id"] == 1
    got = await until(bob, "chat_message")
    assert got["channel"] == "chat.lobby" and got["data"]["message"] == "hi"
    assert got["offset"] == sent["offset"]
    await alice.disconnect()
    await bob.disconnect()


@hub_settings(REQUIRE_AUTH=False)
async def test_send_to_user_and_broadcast_all_reach_implicit_channels(make_user_async):
    token = await make_user_async("alice")
    comm = await open_socket(f"/ws/?token={token}")
    assert (await until(comm, "connected"))["user"] == "alice"
    await hub_publish.send_to_user("alice", "notification", {"title": "yours"})
    frame = await until(comm, "notification")
    assert frame["channel"] == "user:alice"
    await hub_publish.broadcast_all("maintenance", {"at": "now"})
    assert (await until(comm, "maintenance"))["channel"] == "all"
    await comm.disconnect()


@pytest.fixture
def make_user_async(make_user):
    from asgiref.sync import sync_to_async

    async def make(name, staff=False):
        _user, token = await sync_to_async(make_user)(name, staff)
        return token

    return make


@hub_settings(REQUIRE_AUTH=False)
async def test_control_type_is_never_an_event_name():
    from hub.engine.errors import PublishError

    for name in ("pong", "subscribed", "error", "heartbeat"):
        with pytest.raises(PublishError) as info:
            await hub_publish.publish("jobs", name, {})
        assert info.value.code == "invalid_message"


@hub_settings(REQUIRE_AUTH=False, MAX_QUEUED_BYTES=2048)
async def test_slow_consumer_is_dropped_and_counted_while_others_keep_receiving():
    from hub.engine.node import get_node

    slow, fast = await open_socket(), await open_socket()
    for comm in (slow, fast):
        await until(comm, "connected")
        await comm.send_json_to({"type": "subscribe", "channel": "jobs"})
        await until(comm, "subscribed")
    # The communicator never blocks, so make the slow socket's writer look backed up.
    node = get_node()
    slow_conn = next(iter(node.connections.values()))  # opened first: `slow`
    slow_conn.writer._send = _never_returns
    for index in range(50):
        await hub_publish.publish("jobs", "job_submitted", {"job_id": str(index), "pad": "x" * 100})
    received = 0
    while received < 50:
        frame = await recv(fast)
        received += frame["type"] == "job_submitted"
    assert node.stats.slow_consumer_closes == 1
    assert slow_conn.client_id not in node.connections  # dropped at once, not left queuing
    await fast.disconnect()


async def _never_returns(message):
    await asyncio.Event().wait()


async def closed_with(comm, timeout=3) -> int:
    while True:
        message = await comm.receive_output(timeout)
        if message["type"] == "websocket.close":
            return message.get("code")


@hub_settings(HEARTBEAT_INTERVAL=60)
async def test_token_delete_and_deactivation_close_sockets_at_once(make_user_async):
    """The signal road (hub.socket.credentials.revoke -> Node.broadcast_control): no wait for the
    periodic re-check (a 60 s heartbeat here). Only the named credential's sockets close."""
    from asgiref.sync import sync_to_async
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    alice, bob = await make_user_async("alice"), await make_user_async("bob")
    first, second = await open_socket(f"/ws/?token={alice}"), await open_socket(f"/ws/?token={bob}")
    for comm in (first, second):
        await until(comm, "connected")
    await sync_to_async(lambda: Token.objects.get(key=alice).delete())()
    assert await closed_with(first) == 4001
    await second.send_json_to({"type": "ping", "id": 1})
    assert (await until(second, "pong"))["id"] == 1
    user = await sync_to_async(get_user_model().objects.get)(username="bob")
    user.is_active = False
    await sync_to_async(user.save)()
    assert await closed_with(second) == 4001


@hub_settings(HEARTBEAT_INTERVAL=60)
async def test_broadcaster_permission_is_loaded_with_the_user(make_user_async):
    """Principal.can_broadcast is computed in the sync lookup, never on the event loop."""
    from asgiref.sync import sync_to_async
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    from hub.socket.auth import credential_for_token

    token = await make_user_async("svc")

    def grant():
        user = get_user_model().objects.get(username="svc")
        user.user_permissions.add(Permission.objects.get(codename="broadcast",
                                                         content_type__app_label="hub"))

    assert (await credential_for_token(token)).principal.can_broadcast is False
    await sync_to_async(grant)()
    credential = await credential_for_token(token)
    assert (credential.principal.can_broadcast, credential.kind, credential.key) == (
        True, "token", token)


async def test_an_admitted_socket_keeps_no_handshake_data_and_still_lists_its_agent(make_user_async):
    """Once admitted, the socket's scope holds neither the handshake's headers (cookies,
    Authorization) nor its query string (``?token=``): ~1 KB per idle socket, and credentials
    kept no longer than needed. The token's re-check still works (it uses the Credential),
    and the connection listing still shows address, path and user agent."""
    from asgiref.sync import sync_to_async
    from rest_framework.authtoken.models import Token

    from hub.engine.node import get_node

    alice = await make_user_async("alice")
    comm = await open_socket(f"/ws/?token={alice}",
                             headers=[(b"user-agent", b"probe/1.0"), (b"cookie", b"a=b")])
    await until(comm, "connected")
    node = get_node()
    (conn,) = node.connections.values()
    assert set(conn.scope) <= {"type", "path", "client", "user_agent"}  # no "client" here
    assert "headers" not in conn.scope and "query_string" not in conn.scope
    (info,) = node.client_infos()
    assert info.metadata["user_agent"] == "probe/1.0" and info.metadata["path"] == "/ws/"
    await sync_to_async(lambda: Token.objects.get(key=alice).delete())()
    assert await closed_with(comm) == 4001
