"""POST /api/broadcast: permissions, validation (400/401/403/405/413/415/429), the audit log,
503 when the hub is unavailable; in-process with the real engine and DRF's APIClient."""

from __future__ import annotations

import asyncio

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from rest_framework.test import APIClient

from hub.ops import audit
from hub.rest import broadcasting
from hub.engine.errors import HubUnavailable, PublishError
from hub.engine.node import Node
from hub.models import BroadcastAudit

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()
    broadcasting.reset_rates()
    audit.discard()
    yield
    cache.clear()
    broadcasting.reset_rates()
    audit.discard()


def rows():
    """The audit rows: written off the request path, so flush the queue first."""
    audit.flush()
    return BroadcastAudit.objects.order_by("id")


def user_client(username: str, *, broadcast: bool = False, staff: bool = False) -> APIClient:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user = get_user_model().objects.create_user(username=username, is_staff=staff)
    if broadcast:
        user.user_permissions.add(Permission.objects.get(codename="broadcast", content_type__app_label="hub"))
    token = Token.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def publisher() -> APIClient:
    return user_client("svc", broadcast=True)


def post(client: APIClient, body, path="/api/broadcast", **kwargs):
    return client.post(path, body, format="json", **kwargs)


def test_broadcast_to_a_channel_answers_offset_and_is_audited(publisher):
    first = post(publisher, {"channel": "jobs", "message": {"type": "job_submitted", "data": {"job_id": "1"}}})
    second = post(publisher, {"channel": "jobs", "message": {"type": "job_submitted", "data": {"job_id": "2"}}})
    assert first.status_code == 200, first.json()
    assert first.json()["success"] is True and first.json()["channel"] == "jobs"
    assert isinstance(first.json()["offset"], int)
    assert second.status_code == 200
    written = list(rows())
    assert len(written) == 2
    row = written[0]
    assert (row.username, row.target_kind, row.target, row.event_type, row.result) == (
        "svc", "channel", "jobs", "job_submitted", "ok")
    assert row.size_bytes == len('{"type":"job_submitted","data":{"job_id":"1"}}')
    assert row.offset == first.json()["offset"] and row.created_at is not None


def test_broadcast_to_all_and_to_a_user(publisher):
    to_all = post(publisher, {"channel": "all", "message": {"type": "maintenance", "data": {"in": 5}}})
    to_user = post(publisher, {"user": "alice", "message": {"type": "job_finished", "data": {}}})
    assert to_all.status_code == 200 and to_all.json()["channel"] == "all"
    assert to_user.status_code == 200 and to_user.json()["channel"] == "user:alice"
    kinds = list(rows().values_list("target_kind", "target"))
    assert kinds == [("all", "all"), ("user", "alice")]


def test_both_slash_forms_are_routed(publisher):
    body = {"channel": "test_channel", "message": {"type": "message", "data": 1}}
    assert post(publisher, body, "/api/broadcast").status_code == 200
    assert post(publisher, body, "/api/broadcast/").status_code == 200


def test_message_type_defaults_to_message(publisher):
    response = post(publisher, {"channel": "stock_updates", "message": {"data": {"p": 1}}})
    assert response.status_code == 200
    assert rows().get().event_type == "message"


def test_anonymous_is_401_with_json():
    response = post(APIClient(), {"channel": "jobs", "message": {"type": "x"}})
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert "WWW-Authenticate" in response.headers


def test_bad_token_is_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = post(client, {"channel": "jobs", "message": {"type": "x"}})
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_without_the_permission_is_403_even_for_staff():
    """The channel's publish policy decides (``nobody`` on every default channel); the
    refusal is audited."""
    response = post(user_client("bob", staff=True), {"channel": "jobs", "message": {"type": "x"}})
    assert response.status_code == 403
    assert response.json() == {"code": "permission_denied", "message": (
        "publishing to 'jobs' needs the hub.broadcast permission or the channel's publish policy")}
    row = rows().get()
    assert (row.username, row.target, row.result, row.offset) == ("bob", "jobs", "permission_denied", None)


@pytest.mark.parametrize("body", [{"channel": "all", "message": {"type": "x"}},
                                  {"user": "alice", "message": {"type": "x"}}])
def test_all_and_user_targets_are_for_broadcasters_only(body, settings):
    """Even where a policy lets everyone publish, ``all`` and ``user`` need hub.broadcast."""
    from hub.conf import get_policies

    settings.HUB = {**settings.HUB, "CHANNELS": {"*": {"publish": "authenticated"}}}
    get_policies.cache_clear()
    try:
        response = post(user_client("bob", staff=True), body)
    finally:
        get_policies.cache_clear()
    assert response.status_code == 403
    assert response.json()["message"] == "broadcasting needs the hub.broadcast permission"


def test_a_plain_user_publishes_where_the_policy_allows(settings):
    from hub.conf import get_policies

    settings.HUB = {**settings.HUB, "CHANNELS": {"chat.*": {"publish": "authenticated"}}}
    get_policies.cache_clear()
    try:
        alice = user_client("alice")
        allowed = post(alice, {"channel": "chat.lobby", "message": {"type": "chat", "data": "hi"}})
        refused = post(alice, {"channel": "jobs", "message": {"type": "job_submitted", "data": {}}})
    finally:
        get_policies.cache_clear()
    assert allowed.status_code == 200, allowed.json()
    assert refused.status_code == 403
    assert list(rows().values_list("target", "result")) == [
        ("chat.lobby", "ok"), ("jobs", "permission_denied")]


def test_superuser_may_broadcast():
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser("root", password=None)
    client = APIClient()
    client.force_authenticate(admin)
    assert post(client, {"channel": "jobs", "message": {"type": "x"}}).status_code == 200


@pytest.mark.parametrize("body, field", [
    ({"message": {"type": "x"}}, "channel"),
    ({"channel": "jobs"}, "message"),
    ({"channel": "jobs", "user": "alice", "message": {"type": "x"}}, "channel"),
    ({"channel": "bad channel!", "message": {"type": "x"}}, "channel"),
    ({"channel": "x" * 101, "message": {"type": "x"}}, "channel"),
    ({"channel": 7, "message": {"type": "x"}}, "channel"),
    ({"user": "a/b", "message": {"type": "x"}}, "user"),
    ({"channel": "jobs", "message": "hello"}, "message.non_field_errors"),
    ({"channel": "jobs", "message": {"type": "subscribed"}}, "message.type"),
    ({"channel": "jobs", "message": {"type": "bad type"}}, "message.type"),
    ({"channel": "jobs", "message": {"type": 3}}, "message.type"),
    ([1, 2], "[0].non_field_errors"),  # a list body: each item must be an object
    ([], "non_field_errors"),
    ([{"channel": "jobs", "message": {"type": "x"}}, {"channel": "bad channel!", "message": {}}], "[1].channel"),
    ([{"channel": "jobs", "message": {"type": "x"}}] * 1001, "non_field_errors"),
])
def test_bad_input_is_400_naming_the_field(publisher, body, field):
    response = post(publisher, body)
    assert response.status_code == 400, response.content
    payload = response.json()
    assert payload["code"] == "invalid"
    assert field in payload["fields"], payload
    assert isinstance(payload["message"], str) and payload["message"]
    assert not rows().exists()


def test_malformed_json_is_400(publisher):
    response = publisher.post("/api/broadcast", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_other_media_type_is_415(publisher):
    response = publisher.post("/api/broadcast", "channel=jobs", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_get_is_405_with_json(publisher):
    response = publisher.get("/api/broadcast")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_message_over_the_size_limit_is_413_and_audited(publisher, settings):
    settings.HUB = {**settings.HUB, "MAX_MESSAGE_SIZE": 1000}
    response = post(publisher, {"channel": "jobs", "message": {"type": "big", "data": "x" * 2000}})
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    row = rows().get()
    assert row.result == "payload_too_large" and row.size_bytes > 2000


def test_body_over_djangos_upload_limit_is_413(publisher, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 500
    response = post(publisher, {"channel": "jobs", "message": {"type": "big", "data": "x" * 1000}})
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def engine_publish_many(monkeypatch, each):
    """The engine's list publish (what ``hub.publish.publish_many`` calls) replaced: ``each``
    gives an item's outcome (or raises for the whole list)."""
    async def publish_many(self, items):
        return [await each(channel, event, data) for channel, event, data in items]

    monkeypatch.setattr(Node, "publish_many", publish_many)


def test_refused_publication_is_400_with_the_engine_code_and_audited(publisher, monkeypatch):
    async def refuse(channel, event, data):
        return PublishError("unknown_channel", f"no channel {channel!r}")

    engine_publish_many(monkeypatch, refuse)
    response = post(publisher, {"channel": "nowhere", "message": {"type": "x"}})
    assert response.status_code == 400
    assert response.json() == {"code": "unknown_channel", "message": "channel: no channel 'nowhere'",
                               "fields": {"channel": ["no channel 'nowhere'"]}}
    row = rows().get()
    assert (row.result, row.error, row.offset) == ("unknown_channel", "no channel 'nowhere'", None)


def test_unknown_channel_with_the_real_engine(publisher, settings):
    from hub.conf import get_policies

    settings.HUB = {**settings.HUB, "CHANNELS": {"*": None}}
    get_policies.cache_clear()
    try:
        response = post(publisher, {"channel": "stock_updates", "message": {"type": "x"}})
    finally:
        get_policies.cache_clear()
    assert response.status_code == 400
    assert response.json()["code"] == "unknown_channel"
    assert rows().get().result == "unknown_channel"


def test_hub_unavailable_is_503_and_audited(publisher, monkeypatch):
    async def down(channel, event, data):
        raise HubUnavailable("redis", "ConnectionError")

    engine_publish_many(monkeypatch, down)
    response = post(publisher, {"channel": "jobs", "message": {"type": "x"}})
    assert response.status_code == 503
    assert response.json() == {"code": "hub_unavailable", "message": "redis unavailable"}
    row = rows().get()
    assert row.result == "hub_unavailable" and "redis" in row.error


def test_a_publish_that_hangs_is_cut_off_as_503(publisher, monkeypatch):
    async def hang(channel, event, data):
        await asyncio.sleep(3600)

    engine_publish_many(monkeypatch, hang)
    response = post(publisher, {"channel": "jobs", "message": {"type": "x"}})
    assert response.status_code == 503
    assert rows().get().result == "hub_unavailable"


def test_rate_limit_is_429_with_retry_after(publisher, monkeypatch):
    monkeypatch.setenv("HUB_API_RATE_LIMIT", "1/min")
    monkeypatch.setenv("HUB_API_BROADCASTER_RATE_LIMIT", "2/min")  # publisher can broadcast
    body = {"channel": "jobs", "message": {"type": "x"}}
    assert [post(publisher, body).status_code for _ in range(2)] == [200, 200]
    response = post(publisher, body)
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert int(response.headers["Retry-After"]) > 0


def test_broadcasters_have_their_own_higher_limit(publisher, monkeypatch):
    monkeypatch.setenv("HUB_API_RATE_LIMIT", "2/min")
    body = {"channel": "jobs", "message": {"type": "x"}}
    assert [post(publisher, body).status_code for _ in range(5)] == [200] * 5


def test_bad_rate_limit_setting_names_the_variable(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from hub.rest.permissions import api_rate_limit

    monkeypatch.setenv("HUB_API_RATE_LIMIT", "lots")
    with pytest.raises(ImproperlyConfigured, match="HUB_API_RATE_LIMIT"):
        api_rate_limit()
