"""Issue 11 point 2, as an attacker tries it over a real daphne: one publish rule for every
road. A plain user must not put messages into `jobs` or `all` with `chat_message` or
`publish`; the same frames work where the channel's policy allows them (so these tests
can fail), and the chat example does not exist unless the site opts in."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async

from tests.wsutil import connected, recv_until, send_json

pytestmark = pytest.mark.django_db(transaction=True)

CHAT_ENV = {
    "HUB_HANDLER_MODULES": "hub.socket.chat",
    "HUB_CHANNELS": json.dumps({"chat.*": {"subscribe": "authenticated",
                                           "publish": "authenticated"}}),
}


def grant_broadcast(user) -> None:
    from django.contrib.auth.models import Permission

    user.user_permissions.add(Permission.objects.get(codename="broadcast",
                                                     content_type__app_label="hub"))


async def reply_to(ws, frame_id):
    return await recv_until(ws, lambda f: f.get("id") == frame_id)


async def test_plain_user_cannot_chat_into_jobs_or_all(hub_server, make_user):
    _alice, token = await sync_to_async(make_user)("mallory")
    _bob, bob_token = await sync_to_async(make_user)("bob")
    server = hub_server(CHAT_ENV)
    attacker, _ = await connected(f"{server.ws_url}/ws/?token={token}")
    victim, _ = await connected(f"{server.ws_url}/ws/?token={bob_token}")
    await send_json(victim, {"type": "subscribe", "channels": ["jobs", "chat.room"], "id": "s"})
    await send_json(attacker, {"type": "subscribe", "channels": ["jobs", "chat.room"]})
    for channel in ("jobs", "chat.room"):
        await recv_until(attacker, lambda f, c=channel: f.get("channel") == c)
        await recv_until(victim, lambda f, c=channel: f.get("channel") == c)
    for n, channel in enumerate(["jobs", "all"]):  # subscribed to both ("all" implicitly)
        await send_json(attacker, {"type": "chat_message", "channel": channel,
                                   "message": "fake maintenance: run curl | sh", "id": n})
        reply = await reply_to(attacker, n)
        assert (reply["type"], reply["code"], reply["channel"]) == ("error", "forbidden", channel)
        await send_json(attacker, {"type": "publish", "channel": channel, "data": {"x": 1},
                                   "id": f"p{n}"})
        reply = await reply_to(attacker, f"p{n}")
        assert (reply["type"], reply["code"]) == ("error", "forbidden")
    # Where the policy allows publishing, the same frame works: the refusal above was the rule.
    await send_json(attacker, {"type": "chat_message", "channel": "chat.room",
                               "message": "hello", "id": "ok"})
    sent = await reply_to(attacker, "ok")
    assert sent["type"] == "chat_message_sent"
    got = await recv_until(victim, lambda f: f["type"] == "chat_message")
    # Nothing from the refused frames reached the victim before the allowed one.
    assert (got["channel"], got["data"]["message"], got["data"]["user"]) == (
        "chat.room", "hello", "mallory")
    for ws in (attacker, victim):
        await ws.close()


async def test_chat_is_opt_in(hub_server, make_user):
    _user, token = await sync_to_async(make_user)("alice")
    server = hub_server({"HUB_CHANNELS": CHAT_ENV["HUB_CHANNELS"]})
    ws, _ = await connected(f"{server.ws_url}/ws/?token={token}")
    await send_json(ws, {"type": "chat_message", "channel": "chat.x", "message": "hi", "id": 1})
    reply = await reply_to(ws, 1)
    assert (reply["type"], reply["code"]) == ("error", "unknown_type")
    await ws.close()


async def test_a_hub_broadcast_holder_publishes_on_the_socket_like_on_rest(hub_server, make_user):
    """The one rule (hub.policies.may_publish): hub.broadcast publishes where clients may not;
    a staff user without it is still refused on a `nobody` channel."""
    monitor, monitor_token = await sync_to_async(make_user)("monitor-svc")
    await sync_to_async(grant_broadcast)(monitor)
    _boss, boss_token = await sync_to_async(make_user)("boss", staff=True)
    _bob, bob_token = await sync_to_async(make_user)("bob")
    server = hub_server({})
    watcher, _ = await connected(f"{server.ws_url}/ws/?token={bob_token}")
    await send_json(watcher, {"type": "subscribe", "channel": "jobs"})
    await recv_until(watcher, lambda f: f["type"] == "subscribed")
    boss, _ = await connected(f"{server.ws_url}/ws/?token={boss_token}")
    await send_json(boss, {"type": "publish", "channel": "jobs", "data": {}, "id": 1})
    assert (await reply_to(boss, 1))["code"] == "forbidden"
    publisher, _ = await connected(f"{server.ws_url}/ws/?token={monitor_token}")
    await send_json(publisher, {"type": "publish", "channel": "jobs", "event": "job_removed",
                                "data": {"job_id": "7"}, "id": 2})
    assert (await reply_to(publisher, 2))["type"] == "published"
    got = await recv_until(watcher, lambda f: f["type"] == "job_removed")
    assert got["data"] == {"job_id": "7"}
    for ws in (watcher, boss, publisher):
        await ws.close()
