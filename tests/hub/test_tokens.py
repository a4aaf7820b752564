"""POST /api/token, /api/token/jwt and /api/token/jwt/refresh (PROTOCOL.md section 6): what
they hand out works on REST and on the WebSocket; wrong input answers JSON."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async

pytestmark = pytest.mark.django_db(transaction=True)


def post(client, path: str, body) -> tuple[int, dict]:
    response = client.post(path, data=json.dumps(body), content_type="application/json")
    assert response["Content-Type"].startswith("application/json")
    return response.status_code, response.json()


def test_drf_token_for_username_and_password(client, make_user):
    user, key = make_user("alice")
    status, body = post(client, "/api/token", {"username": "alice", "password": "pw-for-tests-only"})
    assert status == 200 and body == {"token": key}
    me = client.get("/api/notifications", HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert me.status_code == 200


def test_jwt_pair_and_refresh(client, make_user):
    make_user("alice")
    status, pair = post(client, "/api/token/jwt", {"username": "alice", "password": "pw-for-tests-only"})
    assert status == 200 and set(pair) == {"access", "refresh"}
    assert client.get("/api/notifications",
                      HTTP_AUTHORIZATION=f"Bearer {pair['access']}").status_code == 200
    status, fresh = post(client, "/api/token/jwt/refresh", {"refresh": pair["refresh"]})
    assert status == 200 and fresh["access"] and fresh["access"].count(".") == 2


@pytest.mark.parametrize("path", ["/api/token", "/api/token/jwt"])
def test_wrong_password_is_refused_in_json(client, make_user, path):
    make_user("alice")
    status, body = post(client, path, {"username": "alice", "password": "wrong"})
    assert status in (400, 401) and body["code"] and "message" in body
    assert "token" not in body and "access" not in body


@pytest.mark.parametrize("body", [{}, {"username": "alice"}, [], "x", {"refresh": 3}])
def test_malformed_bodies_answer_400_json(client, body):
    for path in ("/api/token", "/api/token/jwt", "/api/token/jwt/refresh"):
        status, answer = post(client, path, body)
        assert status in (400, 401) and answer["code"]


def test_bad_refresh_token_answers_401_json(client):
    status, body = post(client, "/api/token/jwt/refresh", {"refresh": "not.a.jwt"})
    assert status == 401 and body["code"]


async def test_jwt_from_the_endpoint_opens_a_socket(hub_server, make_user):
    from django.test import AsyncClient
    import websockets

    await sync_to_async(make_user)("alice")
    server = hub_server()
    pair = (await AsyncClient().post("/api/token/jwt", {"username": "alice", "password": "pw-for-tests-only"},
                                     content_type="application/json")).json()
    async with websockets.connect(f"{server.ws_url}/ws/?token={pair['access']}") as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "connected" and hello["user"] == "alice"


def test_a_verify_only_hub_says_it_issues_no_jwt(client, make_user, settings):
    make_user("alice")
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "SIGNING_KEY": None}
    for path, body in (("/api/token/jwt", {"username": "alice", "password": "pw-for-tests-only"}),
                       ("/api/token/jwt/refresh", {"refresh": "x.y.z"})):
        status, answer = post(client, path, body)
        assert status == 404 and answer["code"] == "jwt_not_issued"
