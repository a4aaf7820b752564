"""GET /api/health, /api/clients, /api/channels: in-process for permissions and errors,
against real daphne processes (and a real Redis that goes down) for the figures."""

from __future__ import annotations

import asyncio
import json

import pytest
import requests
from asgiref.sync import sync_to_async
from django.core.cache import cache
from rest_framework.test import APIClient

from hub.rest import selectors
from hub.engine.errors import HubUnavailable
from tests.wsutil import connected, recv_until, send_json

HEALTH_KEYS = {"status", "clients", "subscriptions", "active_connections", "total_connections",
               "messages_sent", "messages_received", "errors", "channels",
               "users_with_connections", "timestamp"}
HTTP_TIMEOUT_SECONDS = 10  # a hang guard, not a latency assertion


@pytest.fixture(autouse=True)
async def _close_worker_thread_connections():
    """sync_to_async runs ORM calls in asgiref's worker thread, whose connection would
    otherwise stay open and keep PostgreSQL from dropping the test database."""
    yield
    from django.db import connections

    await sync_to_async(connections.close_all)()


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()


def token_client(username: str, staff: bool = False) -> APIClient:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user = get_user_model().objects.create_user(username=username, is_staff=staff)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


# --- in-process ----------------------------------------------------------------------------

@pytest.mark.django_db
def test_health_has_the_protocol_keys_for_anyone():
    response = APIClient().get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert HEALTH_KEYS <= set(body)
    assert body["status"] == "healthy" and body["timestamp"].endswith("Z")
    assert isinstance(body["subscriptions"], dict)


@pytest.mark.django_db
def test_health_ignores_a_stale_token_and_answers_with_a_slash():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token stale")
    assert client.get("/api/health/").status_code == 200


@pytest.mark.django_db
def test_health_is_503_unhealthy_when_the_hub_is_down(monkeypatch):
    async def down():
        raise HubUnavailable("redis", "ConnectionError")

    monkeypatch.setattr(selectors, "get_health", down)
    response = APIClient().get("/api/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy" and body["service"] == "redis"
    assert body["code"] == "hub_unavailable" and body["timestamp"].endswith("Z")


@pytest.mark.django_db
def test_health_post_is_405():
    assert APIClient().post("/api/health").status_code == 405


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/clients", "/api/clients/c_1", "/api/channels", "/api/channels/jobs"])
def test_staff_endpoints_refuse_anonymous_401_and_users_403(path):
    assert APIClient().get(path).status_code == 401
    response = token_client("alice").get(path)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/clients/nobody", "/api/channels/nothing-here",
                                  "/api/channels/bad%20name", "/api/clients/a/b", "/api/channels/x/y/z"])
def test_unknown_client_or_channel_is_json_404(path):
    response = token_client("root", staff=True).get(path)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.django_db
def test_staff_endpoints_503_when_the_hub_is_down(monkeypatch):
    async def down(*args):
        raise HubUnavailable("redis")

    for name in ("list_clients", "get_client", "list_channels", "get_channel"):
        monkeypatch.setattr(selectors, name, down)
    staff = token_client("root", staff=True)
    for path in ("/api/clients", "/api/clients/c1", "/api/channels", "/api/channels/jobs"):
        response = staff.get(path)
        assert response.status_code == 503, path
        assert response.json() == {"code": "hub_unavailable", "message": "redis unavailable"}


# --- real servers ----------------------------------------------------------------------------

def http(method: str, url: str, token: str | None = None, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Token {token}"} if token else {}
    return requests.request(method, url, headers=headers, timeout=HTTP_TIMEOUT_SECONDS, **kwargs)


async def ahttp(*args, **kwargs) -> requests.Response:
    return await asyncio.to_thread(http, *args, **kwargs)


def grant_broadcast(username: str) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.get(username=username)
    user.user_permissions.add(Permission.objects.get(codename="broadcast", content_type__app_label="hub"))


@pytest.mark.django_db(transaction=True)
async def test_clients_channels_and_health_show_live_sockets(hub_server, make_user):
    server = hub_server()
    _alice, alice_token = await sync_to_async(make_user)("alice")
    _root, staff_token = await sync_to_async(make_user)("root", True)
    await sync_to_async(grant_broadcast)("root")
    ws, hello = await connected(f"{server.ws_url}/ws/alice-tab-1?token={alice_token}")
    await send_json(ws, {"type": "subscribe", "channels": ["jobs", "user:alice"]})
    for _ in range(2):
        await recv_until(ws, lambda f: f["type"] == "subscribed")

    clients = (await ahttp("GET", f"{server.url}/api/clients", staff_token)).json()
    mine = [c for c in clients if c["client_id"] == "alice-tab-1"]
    assert len(mine) == 1
    assert mine[0]["user"] == "alice" and {"jobs", "user:alice"} <= set(mine[0]["channels"])
    assert mine[0]["server"] == hello["server"] and mine[0]["connected_at"]
    one = await ahttp("GET", f"{server.url}/api/clients/alice-tab-1/", staff_token)
    assert one.status_code == 200 and one.json()["client_id"] == "alice-tab-1"

    sent = await ahttp("POST", f"{server.url}/api/broadcast", staff_token,
                       json={"channel": "jobs", "message": {"type": "job_submitted", "data": {"job_id": "9"}}})
    assert sent.status_code == 200
    frame = await recv_until(ws, lambda f: f["type"] == "job_submitted")
    assert frame["offset"] == sent.json()["offset"] and frame["data"] == {"job_id": "9"}

    channels = {c["name"]: c for c in (await ahttp("GET", f"{server.url}/api/channels", staff_token)).json()}
    assert channels["jobs"]["subscriber_count"] == 1 and channels["jobs"]["subscribers"] == ["alice-tab-1"]
    jobs = (await ahttp("GET", f"{server.url}/api/channels/jobs", staff_token)).json()
    assert jobs["last_offset"] == sent.json()["offset"]

    health = (await ahttp("GET", f"{server.url}/api/health", staff_token)).json()
    assert health["status"] == "healthy"
    assert health["clients"] == 1 and health["active_connections"] == 1
    assert health["subscriptions"]["jobs"] == 1 and health["subscriptions"]["user:alice"] == 1
    assert health["users_with_connections"] == 1
    anonymous = (await ahttp("GET", f"{server.url}/api/health")).json()
    assert anonymous["subscriptions"] == {}
    assert anonymous["subscriptions_total"] == sum(health["subscriptions"].values())
    assert anonymous["clients"] == 1 and anonymous["channels"] == health["channels"]
    await ws.close()


@pytest.mark.django_db(transaction=True)
async def test_redis_down_gives_503_and_an_audited_failure(hub_server, redis_server, make_user):
    from hub.models import BroadcastAudit

    server = hub_server({"REDIS_URL": redis_server.url})
    _root, token = await sync_to_async(make_user)("root", True)
    await sync_to_async(grant_broadcast)("root")
    body = {"channel": "jobs", "message": {"type": "job_submitted", "data": {}}}
    assert (await ahttp("POST", f"{server.url}/api/broadcast", token, json=body)).status_code == 200
    assert (await ahttp("GET", f"{server.url}/api/health")).status_code == 200

    redis_server.stop()
    broadcast = await ahttp("POST", f"{server.url}/api/broadcast", token, json=body)
    assert broadcast.status_code == 503, broadcast.text
    assert broadcast.json()["code"] == "hub_unavailable"
    health = await ahttp("GET", f"{server.url}/api/health")
    assert health.status_code == 503
    assert health.json()["status"] == "unhealthy"
    clients = await ahttp("GET", f"{server.url}/api/clients", token)
    assert clients.status_code == 503 and json.loads(clients.text)["code"] == "hub_unavailable"
    # The daphne process writes audit rows off the request path (hub.ops.audit, a writer
    # thread flushing every 0.25 s), so the failure's row lands shortly after the 503: wait
    # for it, bounded (a hang guard, not a latency assertion).
    def results():
        return list(BroadcastAudit.objects.order_by("id").values_list("result", flat=True))

    seen: list[str] = []
    for _ in range(200):
        seen = await sync_to_async(results)()
        if len(seen) >= 2:
            break
        await asyncio.sleep(0.05)
    assert seen == ["ok", "hub_unavailable"]
