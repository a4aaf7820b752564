"""POST /api/broadcast through a real daphne, where the lean ASGI route (hub.rest.broadcast_route)
serves Token/Bearer requests: as an attacker would try it (a token deleted while cached, a
plain user's list body, an oversized list), plus a broadcaster's list arriving in order and
audited off the request path. The same rules as the DRF view (tests/hub/test_api_broadcast.py)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import pytest
from django.contrib.auth.models import Permission

from tests.wsutil import connected, recv_until, send_json

pytestmark = pytest.mark.django_db(transaction=True)


def post(url: str, body, token: str, scheme: str = "Token") -> tuple[int, object]:
    request = urllib.request.Request(
        url + "/api/broadcast", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"{scheme} {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def grant_broadcast(user) -> None:
    user.user_permissions.add(Permission.objects.get(codename="broadcast", content_type__app_label="hub"))


async def wait_for(predicate, what: str, timeout: float = 30.0):
    """Poll ``predicate`` (sync, run in a thread) until it returns something true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = await asyncio.to_thread(predicate)
        if found:
            return found
        if loop.time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.1)


async def test_a_deleted_token_stops_working_once_its_cache_entry_expires(hub_server, make_user):
    """The route caches what a token resolves to (HUB_REST_AUTH_CACHE_SECONDS); a token deleted
    by ANOTHER process (here: this test, through the ORM) is refused once that entry expires,
    with the DRF view's own 401."""
    server = hub_server({"HUB_REST_AUTH_CACHE_SECONDS": "1"})
    user, key = await asyncio.to_thread(make_user, "svc")
    await asyncio.to_thread(grant_broadcast, user)
    body = {"channel": "jobs", "message": {"type": "x", "data": 1}}
    status, answer = await asyncio.to_thread(post, server.url, body, key)
    assert status == 200 and answer["success"] is True  # resolved once, now cached

    from rest_framework.authtoken.models import Token

    await asyncio.to_thread(lambda: Token.objects.filter(key=key).delete())
    status, answer = await wait_for(lambda: (r := post(server.url, body, key))[0] == 401 and r,
                                    "the deleted token refused")
    assert answer["code"] == "authentication_failed"


async def test_a_plain_users_list_body_into_jobs_is_refused_whole(hub_server, make_user):
    """A user without hub.broadcast posts a list (one item to their own user channel, one to
    jobs): 403 naming the item, nothing published, the refusal audited."""
    from hub.models import BroadcastAudit

    server = hub_server()
    _staff, staff_key = await asyncio.to_thread(make_user, "watcher", staff=True)
    _user, key = await asyncio.to_thread(make_user, "mallory")
    ws, _ = await connected(f"{server.ws_url}/ws?token={staff_key}")
    await send_json(ws, {"type": "subscribe", "channel": "jobs"})
    await recv_until(ws, lambda f: f["type"] == "subscribed")

    body = [{"channel": "jobs", "message": {"type": "job_state_changed", "data": {"job_id": "1"}}}] * 2
    status, answer = await asyncio.to_thread(post, server.url, body, key, "Bearer")
    assert status == 403
    assert answer == {"code": "permission_denied", "message": (
        "[0]: publishing to 'jobs' needs the hub.broadcast permission or the channel's publish policy")}
    await send_json(ws, {"type": "ping"})  # anything published would arrive before the pong
    frame = await recv_until(ws, lambda f: f["type"] in ("pong", "job_state_changed"))
    assert frame["type"] == "pong"
    await ws.close()
    row = await wait_for(lambda: BroadcastAudit.objects.filter(username="mallory").first(), "the audit row")
    assert (row.target, row.result, row.offset) == ("jobs", "permission_denied", None)


async def test_over_a_thousand_items_is_400_and_nothing_is_published(hub_server, make_user):
    server = hub_server()
    user, key = await asyncio.to_thread(make_user, "svc")
    await asyncio.to_thread(grant_broadcast, user)
    item = {"channel": "jobs", "message": {"type": "x"}}
    status, answer = await asyncio.to_thread(post, server.url, [item] * 1001, key)
    assert status == 400 and answer["code"] == "invalid"
    assert answer["fields"] == {"non_field_errors": ["Ensure this field has no more than 1000 elements."]}
    status, answer = await asyncio.to_thread(post, server.url, [item], key)
    assert status == 200 and answer[0]["offset"] == 1  # the refused list published nothing


async def test_a_broadcasters_list_is_published_in_order_and_audited(hub_server, make_user):
    from hub.models import BroadcastAudit

    server = hub_server()
    user, key = await asyncio.to_thread(make_user, "svc", staff=True)
    await asyncio.to_thread(grant_broadcast, user)
    ws, _ = await connected(f"{server.ws_url}/ws?token={key}")
    await send_json(ws, {"type": "subscribe", "channel": "jobs"})
    await recv_until(ws, lambda f: f["type"] == "subscribed")
    body = [{"channel": "jobs", "message": {"type": "tick", "data": {"n": n}}} for n in range(50)]
    body.append({"user": "alice", "message": {"type": "note", "data": "é"}})
    status, answer = await asyncio.to_thread(post, server.url, body, key)
    assert status == 200 and len(answer) == 51
    assert [a["offset"] for a in answer[:50]] == list(range(1, 51))
    assert answer[50] == {"success": True, "channel": "user:alice", "offset": 1}
    seen = [(await recv_until(ws, lambda f: f["type"] == "tick"))["data"]["n"] for _ in range(50)]
    assert seen == list(range(50))
    await ws.close()
    rows = await wait_for(lambda: (r := list(BroadcastAudit.objects.order_by("id"))) and len(r) == 51 and r,
                          "51 audit rows")
    assert [r.offset for r in rows[:50]] == list(range(1, 51))
    assert (rows[50].target_kind, rows[50].target, rows[50].size_bytes) == (
        "user", "alice", len('{"type":"note","data":"é"}'.encode()))


async def test_a_jwt_publishes_and_a_forged_one_gets_the_views_401(hub_server, make_user):
    server = hub_server()
    user, _key = await asyncio.to_thread(make_user, "svc")
    await asyncio.to_thread(grant_broadcast, user)
    request = urllib.request.Request(
        server.url + "/api/token/jwt", method="POST", headers={"Content-Type": "application/json"},
        data=json.dumps({"username": "svc", "password": "pw-for-tests-only"}).encode())
    access = json.loads(await asyncio.to_thread(lambda: urllib.request.urlopen(request, timeout=10).read()))["access"]
    body = {"channel": "jobs", "message": {"type": "x"}}
    status, answer = await asyncio.to_thread(post, server.url, body, access, "Bearer")
    assert status == 200 and answer["channel"] == "jobs"
    head, payload, _signature = access.split(".")
    status, answer = await asyncio.to_thread(post, server.url, body, f"{head}.{payload}.forged", "Bearer")
    assert status == 401 and answer["code"] == "token_not_valid"
    status, answer = await asyncio.to_thread(post, server.url, body, access, "Token")  # not a DRF token
    assert status == 401 and answer["code"] == "authentication_failed"
