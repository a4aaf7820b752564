"""Issue 11, point 9: any Django username works on every road.

Django's UnicodeUsernameValidator allows unicode word characters and ``.@+-`` (SSO logins
are e-mail addresses). On main such a user's socket closed with 1011 at connect, because
``user:carol@example.edu`` was no valid Channels group name. Over a real daphne, embedded
and with Redis: each of these users connects, receives what is sent to them (REST
broadcast ``{"user": ...}``; a notification, which goes out through
``hub.publish.send_to_user``), and still may not read another user's channel.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.wsutil import connected, recv_until, send_json

pytestmark = pytest.mark.django_db(transaction=True)

USERS = ["carol@example.edu", "a+b", "d.e-f", "jürgen_日本", "l" * 138 + "@example.edu"]


def http(method: str, url: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def make_users(make_user) -> tuple[str, dict[str, str]]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    for name in USERS:  # what Django itself accepts, or the test proves nothing
        get_user_model().username_validator(name)
    ops, ops_token = make_user("ops", staff=True)
    ops.user_permissions.add(Permission.objects.get(codename="broadcast",
                                                    content_type__app_label="hub"))
    return ops_token, {name: make_user(name)[1] for name in USERS}


@pytest.mark.parametrize("backend", ["embedded", "redis"])
async def test_any_django_username_connects_receives_and_stays_private(backend, hub_server,
                                                                      redis_server, make_user):
    from asgiref.sync import sync_to_async

    ops_token, tokens = await sync_to_async(make_users)(make_user)
    env = {"REDIS_URL": redis_server.url} if backend == "redis" else {}
    server = hub_server(env)
    sockets = {}
    for name, token in tokens.items():
        ws, hello = await connected(f"{server.ws_url}/ws/?token={token}")
        assert hello["user"] == name  # connected, not closed with 1011
        sockets[name] = ws

    for name, ws in sockets.items():
        status, body = await asyncio.to_thread(
            http, "POST", f"{server.url}/api/broadcast", ops_token,
            {"user": name, "message": {"type": "direct", "data": {"to": name}}})
        assert status == 200 and body["channel"] == f"user:{name}", body
        frame = await recv_until(ws, lambda f: f["type"] == "direct")
        assert (frame["channel"], frame["data"]) == (f"user:{name}", {"to": name})

        status, body = await asyncio.to_thread(
            http, "POST", f"{server.url}/api/notifications", ops_token,
            {"user": name, "type": "job_finished", "title": f"for {name}"})
        assert status == 201, body
        frame = await recv_until(ws, lambda f, own=f"user:{name}": f["type"] == "notification"
                                 and f["channel"] == own)
        assert frame["data"]["title"] == f"for {name}"

    # Each may subscribe to its own channel by name, never to another user's.
    names = list(sockets)
    for i, (name, ws) in enumerate(sockets.items()):
        other = names[(i + 1) % len(names)]
        await send_json(ws, {"type": "subscribe", "channel": f"user:{name}", "id": "own"})
        reply = await recv_until(ws, lambda f: f.get("id") == "own")
        assert reply["type"] == "subscribed", reply
        await send_json(ws, {"type": "subscribe", "channel": f"user:{other}", "id": "theirs"})
        reply = await recv_until(ws, lambda f: f.get("id") == "theirs")
        assert (reply["type"], reply["code"]) == ("error", "forbidden"), reply

    # A message to one of them reaches that one only.
    target = "carol@example.edu"
    status, _ = await asyncio.to_thread(
        http, "POST", f"{server.url}/api/broadcast", ops_token,
        {"user": target, "message": {"type": "secret", "data": {}}})
    assert status == 200
    await recv_until(sockets[target], lambda f: f["type"] == "secret")
    for name, ws in sockets.items():  # a ping answered after it proves nothing else came
        await send_json(ws, {"type": "ping", "id": "after"})
        frame = await recv_until(ws, lambda f: f["type"] == "secret" or f.get("id") == "after")
        assert frame.get("id") == "after", (name, frame)
    for ws in sockets.values():
        await ws.close()


async def test_channel_detail_over_rest_for_a_user_channel(hub_server, make_user):
    """The staff REST view of a channel takes the same names (URL-quoted)."""
    from asgiref.sync import sync_to_async

    ops_token, tokens = await sync_to_async(make_users)(make_user)
    server = hub_server()
    name = "carol@example.edu"
    ws, _ = await connected(f"{server.ws_url}/ws/?token={tokens[name]}")
    channel = urllib.parse.quote(f"user:{name}", safe="")
    status, body = await asyncio.to_thread(http, "GET", f"{server.url}/api/channels/{channel}",
                                           ops_token)
    assert status == 200 and body["name"] == f"user:{name}", body
    await ws.close()
