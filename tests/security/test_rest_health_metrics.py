"""Issue 11 point 8 and 11, as an outsider would try them against a real daphne: who is
online and which channels users chose must not leak through /api/health or /metrics, and
health must not be a free flood target."""

from __future__ import annotations

import asyncio

import pytest
import requests
from asgiref.sync import sync_to_async

from tests.wsutil import connected, recv_until, send_json

HTTP_TIMEOUT_SECONDS = 10  # a hang guard, not a latency assertion
SECRET_CHANNEL = "secret-project-x"


@pytest.fixture(autouse=True)
async def _close_worker_thread_connections():
    yield
    from django.db import connections

    await sync_to_async(connections.close_all)()


def get(url: str, **headers) -> requests.Response:
    return requests.get(url, headers=headers, timeout=HTTP_TIMEOUT_SECONDS)


async def aget(url: str, **headers) -> requests.Response:
    return await asyncio.to_thread(get, url, **headers)


async def alice_online(server, token: str):
    """alice connected, subscribed to her own channel and to a name she made up."""
    ws, _hello = await connected(f"{server.ws_url}/ws/?token={token}")
    await send_json(ws, {"type": "subscribe", "channels": ["user:alice", SECRET_CHANNEL, "jobs"]})
    for _ in range(3):
        await recv_until(ws, lambda f: f["type"] == "subscribed")
    return ws


@pytest.mark.django_db(transaction=True)
async def test_anonymous_health_names_no_channel_and_no_user_but_staff_sees_them(hub_server, make_user):
    server = hub_server()
    _alice, alice_token = await sync_to_async(make_user)("alice")
    _root, staff_token = await sync_to_async(make_user)("root", True)
    ws = await alice_online(server, alice_token)

    for headers in ({}, {"Authorization": "Token stale-or-forged"}, {"Authorization": "Bearer x.y.z"},
                    {"Authorization": f"Token {alice_token}"}):
        answer = await aget(f"{server.url}/api/health", **headers)
        assert answer.status_code == 200, (headers, answer.text)
        body = answer.json()
        assert body["subscriptions"] == {}
        assert "alice" not in answer.text and SECRET_CHANNEL not in answer.text and "user:" not in answer.text
        assert body["clients"] == 1 and body["users_with_connections"] == 1  # counts stay
        assert body["subscriptions_total"] >= 3 and body["channels"] >= 3

    staff = (await aget(f"{server.url}/api/health", Authorization=f"Token {staff_token}")).json()
    assert staff["subscriptions"]["user:alice"] == 1 and staff["subscriptions"][SECRET_CHANNEL] == 1
    assert staff["subscriptions_total"] == sum(staff["subscriptions"].values())
    await ws.close()


@pytest.mark.django_db(transaction=True)
async def test_metrics_carry_no_client_chosen_channel_or_user_name(hub_server, make_user):
    server = hub_server()
    _alice, alice_token = await sync_to_async(make_user)("alice")
    ws = await alice_online(server, alice_token)

    text = (await aget(f"{server.url}/metrics")).text
    assert SECRET_CHANNEL not in text and "alice" not in text
    assert 'channel="other"' in text and 'channel="user:*"' in text and 'channel="jobs"' in text
    await ws.close()


@pytest.mark.django_db(transaction=True)
async def test_a_health_flood_from_one_address_is_cut_off(hub_server):
    """Each request a new X-Forwarded-For: the throttle keys on the peer address anyway."""
    server = hub_server({"HUB_API_HEALTH_RATE_LIMIT": "10/h"})

    def flood() -> list[requests.Response]:
        return [get(f"{server.url}/api/health", **{"X-Forwarded-For": f"10.0.{n // 250}.{n % 250}"})
                for n in range(40)]

    answers = await asyncio.to_thread(flood)
    codes = [a.status_code for a in answers]
    assert codes.count(200) == 10 and codes.count(429) == 30
    refused = answers[-1]
    assert refused.json()["code"] == "throttled" and int(refused.headers["Retry-After"]) > 0
