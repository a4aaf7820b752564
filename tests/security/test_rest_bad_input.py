"""Issue 11 point 10: what a hostile or broken client sends to REST answers a JSON 4xx
naming the problem, never a 500 or an HTML page, and nothing bad is stored."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.test import Client, RequestFactory

from hub.models import BroadcastAudit

pytestmark = pytest.mark.django_db
LONE_SURROGATE_JSON = '"\\ud800"'  # a legal JSON escape that is not Unicode text


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()
    yield
    cache.clear()


def make(username: str, *, broadcast: bool = False, staff: bool = False):
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user = get_user_model().objects.create_user(username=username, is_staff=staff)
    if broadcast:
        user.user_permissions.add(Permission.objects.get(codename="broadcast", content_type__app_label="hub"))
    return user, Token.objects.create(user=user).key


def post_raw(path: str, text: str | bytes, token: str, scheme: str = "Token"):
    return Client().post(path, data=text, content_type="application/json",
                         HTTP_AUTHORIZATION=f"{scheme} {token}")


def assert_json_error(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["code"], str) and isinstance(body["message"], str)
    return body


# --- lone surrogates -------------------------------------------------------------------------

def test_surrogate_in_notification_data_is_400_naming_the_field_and_nothing_is_stored():
    from hub.models import Notification

    _alice, token = make("alice")
    text = '{"type": "note", "title": "t", "data": {"note": ' + LONE_SURROGATE_JSON + "}}"
    body = assert_json_error(post_raw("/api/notifications", text, token), 400)
    assert body["fields"] == {"data.note": [body["fields"]["data.note"][0]]}
    assert "surrogate" in body["message"] and body["message"].startswith("data.note:")
    assert not Notification.objects.exists()
    listing = Client().get("/api/notifications", HTTP_AUTHORIZATION=f"Token {token}")
    assert listing.status_code == 200 and listing.json()["count"] == 0


@pytest.mark.parametrize("text, field", [
    ('{"channel": "jobs", "message": {"type": "x", "data": {"a": [1, ' + LONE_SURROGATE_JSON + "]}}}",
     "message.data.a[1]"),
    ('{"channel": ' + LONE_SURROGATE_JSON + ', "message": {"type": "x"}}', "channel"),
    ('{"channel": "jobs", "message": {"type": "x", "data": {' + LONE_SURROGATE_JSON + ": 1}}}",
     "message.data.\\ud800"),
    (LONE_SURROGATE_JSON, "non_field_errors"),
])
def test_surrogate_anywhere_in_a_broadcast_is_400_and_not_published(text, field):
    _svc, token = make("svc", broadcast=True)
    body = assert_json_error(post_raw("/api/broadcast", text, token), 400)
    assert list(body["fields"]) == [field]
    assert not BroadcastAudit.objects.exists()


def test_bytes_that_are_not_utf8_are_400():
    _svc, token = make("svc", broadcast=True)
    body = assert_json_error(post_raw("/api/broadcast", b'{"channel": "\xed\xa0\x80"}', token), 400)
    assert body["code"] == "parse_error"


# --- nesting ---------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [65, 200, 100_000])
def test_deep_nesting_is_400(depth):
    _svc, token = make("svc", broadcast=True)
    nested = "[" * depth + "]" * depth
    text = '{"channel": "jobs", "message": {"type": "x", "data": ' + nested + "}}"
    body = assert_json_error(post_raw("/api/broadcast", text, token), 400)
    assert body["code"] == "parse_error" and "nested deeper than 64" in body["message"]
    assert not BroadcastAudit.objects.exists()


def test_brackets_inside_strings_do_not_count_as_nesting():
    _svc, token = make("svc", broadcast=True)
    text = '{"channel": "jobs", "message": {"type": "x", "data": {"s": "' + "[{" * 500 + '\\"]"}}}'
    response = post_raw("/api/broadcast", text, token)
    assert response.status_code == 200, response.content


# --- Bearer ------------------------------------------------------------------------------------

def test_bearer_with_a_drf_token_works_like_on_the_websocket():
    _alice, token = make("alice")
    response = Client().get("/api/notifications", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200 and response.json()["count"] == 0


def test_bearer_with_a_jwt_works():
    from rest_framework_simplejwt.tokens import AccessToken

    alice, _token = make("alice")
    response = Client().get("/api/notifications", HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(alice)}")
    assert response.status_code == 200


@pytest.mark.parametrize("header", [
    "Bearer not-a-token", "Bearer a.b.c", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoxfQ.forged",
    "Bearer", "Bearer two words", "bearer lower-case-scheme",
])
def test_a_bad_bearer_is_a_plain_json_401(header):
    response = Client().get("/api/notifications", HTTP_AUTHORIZATION=header)
    body = assert_json_error(response, 401)
    assert body["code"] in {"authentication_failed", "token_not_valid", "not_authenticated",
                            "bad_authorization_header"}
    assert "{" not in body["message"] and "messages" not in body["message"]  # no Python repr
    assert response["WWW-Authenticate"]


def test_a_deactivated_users_drf_token_as_bearer_is_401():
    alice, token = make("alice")
    alice.is_active = False
    alice.save()
    assert_json_error(Client().get("/api/notifications", HTTP_AUTHORIZATION=f"Bearer {token}"), 401)


# --- every error is JSON -----------------------------------------------------------------------

@pytest.mark.parametrize("method, path", [
    ("get", "/api/nope"), ("post", "/api/nope/deeper"), ("get", "/api"), ("delete", "/api/"),
    ("get", "/api/cluster/nope"), ("put", "/api/token-that-does-not-exist"),
    ("get", "/api/notifications/1/read/extra"), ("post", "/api/broadcast/x/y"),
])
def test_unknown_api_paths_are_json_404(method, path):
    body = assert_json_error(getattr(Client(enforce_csrf_checks=True), method)(path), 404)
    assert body["code"] == "not_found"


def test_a_crash_outside_drf_under_api_is_json_500():
    from hub.rest.apis_errors import handler500

    response = handler500(RequestFactory().get("/api/anything"))
    assert response.status_code == 500 and response["Content-Type"] == "application/json"
    assert b"internal_error" in response.content
    assert b"<html" in handler500(RequestFactory().get("/dashboard")).content.lower()


def test_method_not_allowed_is_json_405():
    body = assert_json_error(Client().delete("/api/health"), 405)
    assert body["code"] == "method_not_allowed"


# --- the cluster API -------------------------------------------------------------------------

def test_cluster_jobs_page_is_capped_and_the_cluster_api_is_throttled(monkeypatch):
    _alice, token = make("alice")
    auth = {"HTTP_AUTHORIZATION": f"Token {token}"}
    body = assert_json_error(Client().get("/api/cluster/jobs?limit=10000", **auth), 400)
    assert "limit" in body["fields"]
    monkeypatch.setenv("HUB_API_RATE_LIMIT", "3/h")
    cache.clear()
    codes = [Client().get("/api/cluster/nodes", **auth).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
