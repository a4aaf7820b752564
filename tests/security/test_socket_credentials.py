"""Issue 11 point 5, as an attacker would keep using a socket whose credential is gone:
revoked DRF token, deactivated user, expired JWT, logout. PROTOCOL.md §2: closed with 4001
within two heartbeat intervals (at once on logout, on every server of a cluster)."""

from __future__ import annotations

import asyncio
import secrets
import urllib.request
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async

from tests.wsutil import connect, connected, expect_close, recv_until, send_json

pytestmark = pytest.mark.django_db(transaction=True)

FAST = {"HUB_HEARTBEAT_INTERVAL": "0.3", "HUB_CONNECTION_TIMEOUT": "30"}


def delete_token_behind_the_hubs_back(key: str) -> None:
    """Gone from the database with no signal (an SQL DELETE, another tool): only the
    housekeeping re-check can notice."""
    from rest_framework.authtoken.models import Token

    queryset = Token.objects.filter(key=key)
    assert queryset._raw_delete(queryset.db) == 1


def deactivate_behind_the_hubs_back(username: str) -> None:
    from django.contrib.auth import get_user_model

    assert get_user_model().objects.filter(username=username).update(is_active=False) == 1


async def still_alive(ws, tag: str) -> bool:
    await send_json(ws, {"type": "ping", "id": tag})
    return (await recv_until(ws, lambda f: f.get("id") == tag))["type"] == "pong"


async def test_revoked_drf_token_closes_the_socket(hub_server, make_user):
    _user, token = await sync_to_async(make_user)("alice")
    _other, other_token = await sync_to_async(make_user)("bob")
    server = hub_server(FAST)
    ws, _ = await connected(f"{server.ws_url}/ws/?token={token}", ping_interval=None)
    bystander, _ = await connected(f"{server.ws_url}/ws/?token={other_token}")
    assert await still_alive(ws, "before")
    await sync_to_async(delete_token_behind_the_hubs_back)(token)
    assert await expect_close(ws, timeout=10) == 4001
    assert await still_alive(bystander, "after")  # only the revoked credential's socket
    again = await connect(f"{server.ws_url}/ws/?token={token}")
    assert await expect_close(again) == 4001
    await bystander.close()


async def test_deactivated_user_is_closed_and_stops_receiving(hub_server, make_user):
    _user, token = await sync_to_async(make_user)("carol")
    server = hub_server(FAST)
    # Authenticated by a first `auth` frame this time (any road is re-checked).
    ws = await connect(f"{server.ws_url}/ws/", ping_interval=None)
    await send_json(ws, {"type": "auth", "token": token})
    assert (await recv_until(ws, lambda f: f["type"] == "connected"))["user"] == "carol"
    await sync_to_async(deactivate_behind_the_hubs_back)("carol")
    assert await expect_close(ws, timeout=10) == 4001
    again = await connect(f"{server.ws_url}/ws/?token={token}")
    assert await expect_close(again) == 4001


async def test_expired_jwt_closes_the_socket(hub_server, make_user):
    from rest_framework_simplejwt.tokens import AccessToken

    user, _token = await sync_to_async(make_user)("dave")
    server = hub_server(FAST)
    access = AccessToken.for_user(user)
    access.set_exp(lifetime=timedelta(seconds=3))
    ws, hello = await connected(f"{server.ws_url}/ws/", ping_interval=None,
                                additional_headers={"Authorization": f"Bearer {access}"})
    assert hello["user"] == "dave"
    assert await expect_close(ws, timeout=10) == 4001


def login_session(username: str) -> str:
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client.cookies["sessionid"].value


def post_logout(base_url: str, session_key: str) -> int:
    csrf = secrets.token_hex(16)  # 32 characters: Django's unmasked form
    request = urllib.request.Request(
        f"{base_url}/accounts/logout/", data=b"", method="POST",
        headers={"Cookie": f"sessionid={session_key}; csrftoken={csrf}", "X-CSRFToken": csrf})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


async def test_logout_on_one_server_closes_that_sessions_sockets_on_another_at_once(
        hub_server, make_user, redis_url):
    _user, token = await sync_to_async(make_user)("erin")
    # A 60 s heartbeat: the periodic re-check cannot be what closes the socket here.
    env = {"REDIS_URL": redis_url, "HUB_HEARTBEAT_INTERVAL": "60",
           "HUB_CHANNEL_PREFIX": f"t{secrets.token_hex(4)}"}
    server_a = hub_server(env, name="hub-a")
    server_b = hub_server(env, name="hub-b")
    session_key = await sync_to_async(login_session)("erin")
    other_key = await sync_to_async(login_session)("erin")  # a second browser
    cookie = {"Cookie": f"sessionid={session_key}"}
    browser_tab, hello = await connected(f"{server_b.ws_url}/ws/", additional_headers=cookie)
    assert hello["user"] == "erin"
    same_session_a, _ = await connected(f"{server_a.ws_url}/ws/", additional_headers=cookie)
    other_browser, _ = await connected(f"{server_b.ws_url}/ws/",
                                       additional_headers={"Cookie": f"sessionid={other_key}"})
    script, _ = await connected(f"{server_b.ws_url}/ws/?token={token}")
    status = await asyncio.to_thread(post_logout, server_a.url, session_key)
    assert status in (200, 302), status
    assert await expect_close(browser_tab, timeout=10) == 4001
    assert await expect_close(same_session_a, timeout=10) == 4001
    # The user's other credentials are not that session: they stay.
    assert await still_alive(other_browser, "other")
    assert await still_alive(script, "token")
    again = await connect(f"{server_b.ws_url}/ws/", additional_headers=cookie)
    await send_json(again, {"type": "subscribe", "channel": "jobs", "id": 1})
    assert (await recv_until(again, lambda f: f.get("id") == 1))["code"] == "not_authenticated"
    for ws in (other_browser, script, again):
        await ws.close()
