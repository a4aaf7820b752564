"""Issue 15, site logins: REMOTE_USER behind a proxy, against a real daphne.

The proxy (Kerberos/SAML in front) names the user in ``X-Remote-User``; the hub trusts it
only when ``HUB_REMOTE_USER_HEADER`` says so. The attacker sends the header straight to a hub
that was not told to trust it, and tries to set their own Slurm user with the second header
on a session they already have.
"""

from __future__ import annotations

import asyncio
import json
import re

import pytest
import requests
from asgiref.sync import sync_to_async

from tests.wsutil import connected, recv_until, send_json

TRUSTING = {"HUB_REMOTE_USER_HEADER": "HTTP_X_REMOTE_USER",
            "HUB_REMOTE_SLURM_USER_HEADER": "HTTP_X_REMOTE_SLURM_USER"}


@pytest.fixture(autouse=True)
async def _close_worker_thread_connections():
    yield
    from django.db import connections

    await sync_to_async(connections.close_all)()


def page_config(html: str) -> dict:
    found = re.search(r'<script id="dashboard-config" type="application/json">(.*?)</script>', html, re.S)
    assert found, html[:500]
    return json.loads(found.group(1))


def _get(session: requests.Session, url: str, **headers):
    return session.get(url, headers=headers, timeout=10, allow_redirects=False)


@sync_to_async
def slurm_user_of(username: str) -> str:
    from django.contrib.auth import get_user_model

    from hub.identity import slurm_user_for

    return slurm_user_for(get_user_model().objects.get(username=username))


@pytest.mark.django_db(transaction=True)
async def test_the_proxy_header_logs_in_page_and_socket(hub_server):
    server = hub_server(env=TRUSTING)
    browser = requests.Session()
    page = await asyncio.to_thread(_get, browser, f"{server.url}/", **{
        "X-Remote-User": "alice.smith", "X-Remote-Slurm-User": "asmith"})
    assert page.status_code == 200, page.text[:500]  # the dashboard, not the login form
    assert page_config(page.text)["user"] == "asmith"  # "Mine" is her Slurm user
    assert await slurm_user_of("alice.smith") == "asmith"
    session_key = browser.cookies.get("sessionid")
    assert session_key

    # later requests (the page's REST calls, the socket) come without the header: the
    # session carries on (persistent), as a proxy may only add it on the login location
    listing = await asyncio.to_thread(_get, browser, f"{server.url}/api/notifications")
    assert listing.status_code == 200, listing.text

    ws, hello = await connected(f"{server.ws_url}/ws/", additional_headers={"Cookie": f"sessionid={session_key}"})
    assert hello["user"] == "alice.smith"
    await send_json(ws, {"type": "subscribe", "channel": "user:asmith", "id": 1})
    assert (await recv_until(ws, lambda f: f.get("id") == 1))["type"] == "subscribed"
    await ws.close()


@pytest.mark.django_db(transaction=True)
async def test_an_untrusted_header_is_ignored(hub_server, make_user):
    """Without HUB_REMOTE_USER_HEADER the header is a string like any other."""
    await sync_to_async(make_user)("alice")
    server = hub_server()
    attacker = requests.Session()
    page = await asyncio.to_thread(_get, attacker, f"{server.url}/", **{"X-Remote-User": "alice"})
    assert page.status_code == 302 and "/accounts/login/" in page.headers["Location"]
    api = await asyncio.to_thread(_get, attacker, f"{server.url}/api/notifications", **{"X-Remote-User": "alice"})
    assert api.status_code in (401, 403) and api.headers["Content-Type"].startswith("application/json")
    assert "sessionid" not in attacker.cookies


@pytest.mark.django_db(transaction=True)
async def test_a_logged_in_user_cannot_rename_their_slurm_user(hub_server):
    """The Slurm-user header is read when the proxy logs someone in, not on every request: a
    user whose session exists cannot send it to become another Slurm user. (Behind the
    proxy it is stripped anyway; this is the hub's own line.)"""
    server = hub_server(env=TRUSTING)
    bob = requests.Session()
    first = await asyncio.to_thread(_get, bob, f"{server.url}/", **{"X-Remote-User": "bob"})
    assert first.status_code == 200
    again = await asyncio.to_thread(_get, bob, f"{server.url}/", **{"X-Remote-Slurm-User": "asmith"})
    assert again.status_code == 200 and page_config(again.text)["user"] == "bob"
    assert await slurm_user_of("bob") == "bob"


@pytest.mark.django_db(transaction=True)
async def test_a_bad_name_in_the_header_logs_no_one_in(hub_server):
    server = hub_server(env=TRUSTING)
    session = requests.Session()
    page = await asyncio.to_thread(_get, session, f"{server.url}/", **{"X-Remote-User": "eve smith<script>"})
    assert page.status_code == 302 and "/accounts/login/" in page.headers["Location"]
