"""Issue 15, site logins: OIDC end to end against a local issuer (``oidc-provider-mock``, a
test OpenID provider on PyPI, run in this process) and a real daphne configured by discovery.

The browser is a ``requests.Session`` that follows the authorization-code flow by hand: the
hub's ``/oidc/authenticate/`` sends it to the provider, the provider's consent form is posted
for a subject whose claims the test set, the provider sends it back to ``/oidc/callback/``,
and the hub (mozilla-django-oidc plus ``realtime_project.login_oidc``) exchanges the code,
checks the ID token against the provider's JWKS and reads the user info. The attacker replays
a callback into a session that never started the flow, and signs in as a subject with no
usable username.
"""

from __future__ import annotations

import asyncio
import json
import re

import oidc_provider_mock
import pytest
import requests
from asgiref.sync import sync_to_async

from tests.wsutil import connected


@pytest.fixture(autouse=True)
async def _close_worker_thread_connections():
    yield
    from django.db import connections

    await sync_to_async(connections.close_all)()


@pytest.fixture
def issuer():
    with oidc_provider_mock.run_server_in_thread() as server:
        yield f"http://localhost:{server.server_port}"


def set_claims(issuer: str, sub: str, claims: dict) -> None:
    response = requests.put(f"{issuer}/users/{sub}", json=claims, timeout=10)
    assert response.status_code == 204, response.text


def oidc_env(issuer: str) -> dict[str, str]:
    return {"HUB_OIDC_CLIENT_ID": "hub", "HUB_OIDC_CLIENT_SECRET": "hub-secret-for-tests",
            "HUB_OIDC_ISSUER": issuer, "HUB_OIDC_SLURM_USER_CLAIM": "slurm_user",
            "HUB_LOGIN_URL": "/oidc/authenticate/"}


def sign_in(hub_url: str, sub: str) -> tuple[requests.Session, requests.Response]:
    """The browser's round trip; returns it and the hub's answer to the callback."""
    browser = requests.Session()
    to_login = browser.get(f"{hub_url}/", allow_redirects=False, timeout=10)
    assert to_login.status_code == 302 and to_login.headers["Location"].startswith("/oidc/authenticate/")
    to_provider = browser.get(hub_url + to_login.headers["Location"], allow_redirects=False, timeout=10)
    assert to_provider.status_code == 302, to_provider.text[:500]
    consent = browser.post(to_provider.headers["Location"], data={"sub": sub}, allow_redirects=False,
                           timeout=10)
    assert consent.status_code == 302 and "/oidc/callback/" in consent.headers["Location"], consent.text[:500]
    back = browser.get(consent.headers["Location"], allow_redirects=False, timeout=30)
    return browser, back


def page_user(html: str) -> str:
    found = re.search(r'<script id="dashboard-config" type="application/json">(.*?)</script>', html, re.S)
    assert found, html[:500]
    return json.loads(found.group(1))["user"]


@sync_to_async
def account(username: str):
    from django.contrib.auth import get_user_model

    from hub.identity import slurm_user_for

    user = get_user_model().objects.filter(username=username).first()
    return None if user is None else (user.email, slurm_user_for(user), user.has_usable_password())


@pytest.mark.django_db(transaction=True)
async def test_oidc_login_maps_claims_to_the_user_and_the_slurm_user(hub_server, issuer):
    await asyncio.to_thread(set_claims, issuer, "0b6f-alice", {
        "preferred_username": "alice.smith", "email": "alice@example.edu", "slurm_user": "asmith"})
    server = hub_server(env=oidc_env(issuer))  # endpoints by discovery from the issuer
    browser, back = await asyncio.to_thread(sign_in, server.url, "0b6f-alice")
    assert back.status_code == 302 and back.headers["Location"] == "/", back.text[:500]
    assert await account("alice.smith") == ("alice@example.edu", "asmith", False)

    page = await asyncio.to_thread(browser.get, f"{server.url}/", timeout=10)
    assert page.status_code == 200 and page_user(page.text) == "asmith"
    ws, hello = await connected(f"{server.ws_url}/ws/",
                                additional_headers={"Cookie": f"sessionid={browser.cookies['sessionid']}"})
    assert hello["user"] == "alice.smith"
    await ws.close()


@pytest.mark.django_db(transaction=True)
async def test_a_replayed_callback_and_a_nameless_subject_log_no_one_in(hub_server, issuer):
    await asyncio.to_thread(set_claims, issuer, "0b6f-alice", {"preferred_username": "alice.smith"})
    await asyncio.to_thread(set_claims, issuer, "no-name", {"email": "x@example.edu"})
    server = hub_server(env=oidc_env(issuer))

    # the attacker captures alice's callback URL (code and state) and opens it in a session
    # that never started the flow: the state is not theirs, nobody is logged in
    browser = requests.Session()
    to_provider = await asyncio.to_thread(browser.get, f"{server.url}/oidc/authenticate/",
                                          allow_redirects=False, timeout=10)
    consent = await asyncio.to_thread(browser.post, to_provider.headers["Location"], data={"sub": "0b6f-alice"},
                                      allow_redirects=False, timeout=10)
    attacker = requests.Session()
    replay = await asyncio.to_thread(attacker.get, consent.headers["Location"], allow_redirects=False, timeout=30)
    assert "sessionid" not in attacker.cookies or \
        (await asyncio.to_thread(attacker.get, f"{server.url}/", allow_redirects=False, timeout=10)).status_code == 302
    assert replay.status_code in (302, 400)
    assert await account("alice.smith") is None

    # a subject without a preferred_username is refused, not given an account named by e-mail
    _, back = await asyncio.to_thread(sign_in, server.url, "no-name")
    assert back.status_code == 302 and back.headers["Location"] == "/accounts/login/"
    from django.contrib.auth import get_user_model

    assert await sync_to_async(get_user_model().objects.count)() == 0
