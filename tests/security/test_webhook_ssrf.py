"""Attacker-style tests of notification rules (issue 11 rules, issue 15 feature): a user's
webhook URL must not turn the hub into a proxy into its own network, and nobody reads or
changes another person's rules."""

from __future__ import annotations

import pytest
from django.test import Client

from hub.notify import deliveries
from hub.models import NotificationDelivery, NotificationRule
from hub.notify.notifications import create_notification
from tests.hub.webhook_receiver import WebhookReceiver


@pytest.fixture
def receiver():
    r = WebhookReceiver().start()
    yield r
    r.stop()


@pytest.fixture(autouse=True)
def default_policy(monkeypatch):
    monkeypatch.delenv("HUB_WEBHOOK_ALLOW_PRIVATE", raising=False)


def test_a_loopback_webhook_is_refused_and_recorded_failed_not_sent(make_user, receiver):
    mallory, _ = make_user("mallory")
    client = Client()
    client.force_login(mallory)
    put = client.put("/api/notifications/rules",
                     {"webhook_url": receiver.url, "channels": {"job_completed": ["webhook"]}},
                     content_type="application/json")
    assert put.status_code == 200  # the URL's form is fine; where it points is judged at send time
    create_notification("mallory", "job_completed", "Job 1 completed", "", "success")

    assert deliveries.deliver_pending() == {"sent": 0, "retry": 0, "failed": 1}
    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert "refused" in delivery.last_error and "127.0.0.1" in delivery.last_error
    assert receiver.posts == []  # no request ever reached the internal service
    assert deliveries.deliver_pending() == {"sent": 0, "retry": 0, "failed": 0}  # no retry


@pytest.mark.parametrize("url", [
    "http://localhost:9/x", "http://127.1:9/x", "http://[::1]:9/x", "http://169.254.169.254/latest/meta-data",
    "http://10.0.0.1/x", "http://192.168.1.1/x", "http://0.0.0.0:9/x", "http://[::ffff:127.0.0.1]:9/x",
    "https://[fe80::1]/x",
])
def test_internal_addresses_are_refused_before_connecting(url, monkeypatch):
    def no_connect(*args, **kwargs):
        raise AssertionError("connected to a refused address")

    monkeypatch.setattr("socket.create_connection", no_connect)
    with pytest.raises(deliveries.Refused):
        deliveries.post_webhook(url, {"text": "x"})


def test_the_opt_in_is_what_allows_a_private_receiver(make_user, receiver, monkeypatch):
    monkeypatch.setenv("HUB_WEBHOOK_ALLOW_PRIVATE", "true")
    deliveries.post_webhook(receiver.url, {"text": "hello"})
    assert [p["json"] for p in receiver.posts] == [{"text": "hello"}]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://127.0.0.1:6379/_FLUSHALL",
                                 "http://a@b.example.org/", "http:///nohost", "http://x.example.org:99999/",
                                 "http://x.example.org/\r\nHost: evil"])
def test_non_http_or_malformed_webhook_urls_are_rejected_on_put(make_user, url):
    user, _ = make_user("mallory")
    client = Client()
    client.force_login(user)
    response = client.put("/api/notifications/rules", {"webhook_url": url}, content_type="application/json")
    assert response.status_code == 400 and "webhook_url" in response.json()["fields"]
    assert not NotificationRule.objects.filter(webhook_url=url).exists()


def test_rules_are_the_callers_own_only(make_user):
    alice, _ = make_user("alice")
    bob, bob_token = make_user("bob")
    NotificationRule.objects.create(user=alice, webhook_url="https://alice.example.org/hook")
    bob_client = Client(HTTP_AUTHORIZATION=f"Token {bob_token}")
    got = bob_client.get("/api/notifications/rules").json()
    assert got["webhook_url"] == "" and "alice" not in str(got)
    # Naming someone else in the body changes nothing of theirs: the rule is the caller's.
    bob_client.put("/api/notifications/rules", {"user": "alice", "webhook_url": "https://bob.example.org/h"},
                   content_type="application/json")
    assert NotificationRule.objects.get(user=alice).webhook_url == "https://alice.example.org/hook"
    assert NotificationRule.objects.get(user=bob).webhook_url == "https://bob.example.org/h"

    for headers in ({}, {"HTTP_AUTHORIZATION": "Token forged-token-0000"}):
        anonymous = Client(**headers)
        for response in (anonymous.get("/api/notifications/rules"),
                         anonymous.put("/api/notifications/rules", {"webhook_url": ""},
                                       content_type="application/json")):
            assert response.status_code == 401 and response["Content-Type"].startswith("application/json")
