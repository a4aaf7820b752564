"""Notification rules and their e-mail/webhook deliveries (issue 15): each delivered once,
retried with backoff, recorded; defaults without configuration; the rules' REST road.

The e2e test goes the monitor's way: its ``HttpSink`` posts a job's end to a real daphne,
which stores the notification and plans its deliveries; the sender (``deliver_pending``,
what ``manage.py run_deliveries`` loops over) runs here, with Django's locmem mailbox, and
a webhook receiver started by the test gets the POST.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from hub.notify import deliveries
from hub.models import Notification, NotificationDelivery, NotificationRule
from hub.notify.notifications import NotificationError, create_notification, create_notifications
from tests.hub.webhook_receiver import WebhookReceiver


@pytest.fixture
def receiver():
    started: list[WebhookReceiver] = []

    def start(*statuses: int) -> WebhookReceiver:
        r = WebhookReceiver(statuses or (200,)).start()
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()


@pytest.fixture(autouse=True)
def local_webhooks(monkeypatch):
    """The receiver is on 127.0.0.1: allowed here only (tests/security/test_webhook_ssrf.py
    proves it is refused by default)."""
    monkeypatch.setenv("HUB_WEBHOOK_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("HUB_DELIVERY_BACKOFF_SECONDS", "30")
    monkeypatch.delenv("HUB_DELIVERY_MAX_ATTEMPTS", raising=False)


def failed_job(job_id: str = "4242", user: str = "alice"):
    from slurm_monitor.events import build_job_notification
    from slurm_monitor.snapshot import Job

    job = Job(job_id=job_id, name="train", user=user, partition="gpu", state="FAILED", reason=None,
              nodes="n1", node_count=1, cpus=4, gpus=0, memory_mb=1000, submit_time=1, start_time=2,
              end_time=3, time_limit_minutes=60, exit_code=3, signal=None)
    return build_job_notification(job)


def test_a_jobs_end_reaches_the_webhook_and_the_mailbox_exactly_once(make_user, hub_server, receiver):
    hook = receiver()
    alice, _ = make_user("alice")
    alice.email = "alice@example.org"
    alice.save()
    NotificationRule.objects.create(user=alice, webhook_url=hook.url,
                                    channels={"job_failed": ["page", "email", "webhook"]})
    monitor, token = make_user("monitor")
    monitor.user_permissions.add(Permission.objects.get(codename="broadcast", content_type__app_label="hub"))
    server = hub_server()

    from slurm_monitor.sinks import HttpSink

    asyncio.run(HttpSink(server.url, token).notify(failed_job()))

    row = Notification.objects.get(username="alice", type="job_failed")
    planned = NotificationDelivery.objects.filter(notification=row)
    assert sorted(planned.values_list("channel", "target")) == [
        ("email", "alice@example.org"), ("webhook", hook.url)]
    assert deliveries.deliver_pending() == {"sent": 2, "retry": 0, "failed": 0}

    assert len(hook.posts) == 1
    post = hook.posts[0]
    assert post["path"] == "/hooks/test" and post["content_type"] == "application/json"
    assert "Job 4242 (train) failed" in post["json"]["text"] and "exit code 3" in post["json"]["text"]
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["alice@example.org"]
    assert mail.outbox[0].subject == "Job 4242 (train) failed"
    assert all(d.status == "sent" and d.attempts == 1 and d.sent_at for d in planned.all())

    # Once: the sender again, and planning the same notification again, send nothing more.
    assert deliveries.deliver_pending() == {"sent": 0, "retry": 0, "failed": 0}
    assert deliveries.plan(row) == 0
    call_command("run_deliveries", "--once")
    assert len(hook.posts) == 1 and len(mail.outbox) == 1


def test_a_failing_receiver_is_retried_with_backoff_and_recorded(make_user, receiver, monkeypatch):
    hook = receiver(500, 500, 200)
    bob, _ = make_user("bob")
    NotificationRule.objects.create(user=bob, webhook_url=hook.url,
                                    channels={"job_completed": ["webhook"]})
    create_notification("bob", "job_completed", "Job 7 completed", "fine", "success", {"job_id": "7"})
    delivery = NotificationDelivery.objects.get(channel="webhook")

    before = timezone.now()
    assert deliveries.deliver_pending() == {"sent": 0, "retry": 1, "failed": 0}
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert "HTTP 500" in delivery.last_error
    assert delivery.next_attempt_at >= before + timedelta(seconds=30)  # first backoff: the base
    assert deliveries.deliver_pending() == {"sent": 0, "retry": 0, "failed": 0}  # not due yet
    assert len(hook.posts) == 1

    NotificationDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    before = timezone.now()
    assert deliveries.deliver_pending() == {"sent": 0, "retry": 1, "failed": 0}
    delivery.refresh_from_db()
    assert delivery.attempts == 2
    assert delivery.next_attempt_at >= before + timedelta(seconds=60)  # doubled

    NotificationDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert deliveries.deliver_pending() == {"sent": 1, "retry": 0, "failed": 0}
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("sent", 3, "")
    assert len(hook.posts) == 3


def test_attempts_are_bounded_then_the_delivery_is_failed(make_user, receiver, monkeypatch):
    monkeypatch.setenv("HUB_DELIVERY_MAX_ATTEMPTS", "2")
    hook = receiver(500)
    carol, _ = make_user("carol")
    NotificationRule.objects.create(user=carol, webhook_url=hook.url, channels={"job_failed": ["webhook"]})
    create_notification("carol", "job_failed", "Job 8 failed", "", "error")
    for _ in range(2):
        NotificationDelivery.objects.update(next_attempt_at=timezone.now())
        deliveries.deliver_pending()
    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    NotificationDelivery.objects.update(next_attempt_at=timezone.now())
    assert deliveries.deliver_pending() == {"sent": 0, "retry": 0, "failed": 0}
    assert len(hook.posts) == 2


def test_defaults_without_configuration(make_user):
    dora, _ = make_user("dora")
    dora.email = "dora@example.org"
    dora.save()
    make_user("eve")  # no address
    create_notification("dora", "job_failed", "Job 1 failed", "", "error")
    create_notification("dora", "job_timeout", "Job 2 timed out", "", "warning")
    create_notification("dora", "job_completed", "Job 3 completed", "", "success")
    create_notification("eve", "job_failed", "Job 4 failed", "", "error")
    create_notification(None, "node_down", "Node n1 is down", "", "error")
    planned = list(NotificationDelivery.objects.order_by("id")
                   .values_list("notification__title", "channel", "target"))
    assert planned == [("Job 1 failed", "email", "dora@example.org"),
                       ("Job 2 timed out", "email", "dora@example.org")]


def test_a_batch_stores_pushes_and_plans_like_one_by_one(make_user, monkeypatch):
    """``create_notifications`` (the monitor's poll): one outcome per spec, a bad one refused
    alone, each pushed on its own channel in one ``publish_many``, and deliveries planned
    exactly as ``create_notification`` plans them (an owner without an account: none)."""
    from hub import publish as hub_publish

    pushes: list[list] = []
    monkeypatch.setattr(hub_publish, "publish_many_sync", lambda items: pushes.append(items) or
                        list(range(1, len(items) + 1)))
    dora, _ = make_user("dora")
    dora.email = "dora@example.org"
    dora.save()
    outcomes = create_notifications([
        ("dora", "job_failed", "Job 1 failed", "", "error", {"job_id": "1"}),
        ("nobody", "job_failed", "Job 2 failed", "", "error", None),  # no hub account
        ("dora", "job_failed", "Job 3 failed", "", "loud", None),  # bad severity
        (None, "node_down", "Node n1 is down", "", "error", None),
        ("dora", "job_timeout", "Job 4 timed out", "", "warning", None)])
    assert isinstance(outcomes[2], NotificationError)
    stored = [o for o in outcomes if not isinstance(o, NotificationError)]
    assert [o["title"] for o in stored] == ["Job 1 failed", "Job 2 failed", "Node n1 is down", "Job 4 timed out"]
    assert sorted(Notification.objects.values_list("id", flat=True)) == sorted(o["id"] for o in stored)
    assert len(pushes) == 1
    assert [(channel, event, data["id"]) for channel, event, data in pushes[0]] == [
        ("user:dora", "notification", stored[0]["id"]), ("user:nobody", "notification", stored[1]["id"]),
        ("notifications", "notification", stored[2]["id"]), ("user:dora", "notification", stored[3]["id"])]
    planned = list(NotificationDelivery.objects.order_by("id").values_list("notification__title", "channel", "target"))
    assert planned == [("Job 1 failed", "email", "dora@example.org"),
                       ("Job 4 timed out", "email", "dora@example.org")]


def test_cluster_wide_notifications_go_only_to_explicit_rules(make_user, receiver):
    hook = receiver()
    frank, _ = make_user("frank")
    make_user("gina")
    NotificationRule.objects.create(user=frank, webhook_url=hook.url,
                                    channels={"node_down": ["webhook"], "maintenance": []})
    create_notification(None, "node_down", "Node n1 is down", "", "error")
    create_notification(None, "maintenance", "Maintenance Monday", "", "info")
    assert list(NotificationDelivery.objects.values_list("username", "channel", "notification__title")) == [
        ("frank", "webhook", "Node n1 is down")]
    deliveries.deliver_pending()
    assert [p["json"]["text"] for p in hook.posts] == ["Node n1 is down"]


def test_rules_rest_road(make_user):
    harry, _ = make_user("harry")
    harry.email = "harry@example.org"
    harry.save()
    client = Client()
    assert client.get("/api/notifications/rules").status_code in (401, 403)
    client.force_login(harry)
    got = client.get("/api/notifications/rules").json()
    assert got["customised"] is False and got["effective_email"] == "harry@example.org"
    assert got["channels"]["job_failed"] == ["page", "browser", "email"]
    assert got["channels"]["node_down"] == ["page", "browser"]

    put = client.put("/api/notifications/rules", {"channels": {"job_completed": ["email"]},
                                                  "webhook_url": "https://chat.example.org/hooks/x"},
                     content_type="application/json")
    assert put.status_code == 200, put.content
    body = put.json()
    assert body["customised"] is True and body["webhook_url"] == "https://chat.example.org/hooks/x"
    assert body["channels"]["job_completed"] == ["page", "email"]
    assert body["channels"]["job_failed"] == ["page", "browser", "email"]  # untouched: default

    for bad, field in [({"webhook_url": "ftp://x.example.org/"}, "webhook_url"),
                       ({"webhook_url": "javascript:alert(1)"}, "webhook_url"),
                       ({"webhook_url": "http://user:pw@x.example.org/"}, "webhook_url"),
                       ({"channels": {"everything": ["email"]}}, "channels"),
                       ({"channels": {"job_failed": ["sms"]}}, "channels"),
                       ({"channels": ["email"]}, "channels"),
                       ({"email": "not-an-address"}, "email")]:
        response = client.put("/api/notifications/rules", bad, content_type="application/json")
        assert response.status_code == 400, (bad, response.content)
        assert response["Content-Type"].startswith("application/json")
        assert any(name.split(".")[0] == field for name in response.json()["fields"]), response.json()
    assert NotificationRule.objects.get(user=harry).webhook_url == "https://chat.example.org/hooks/x"


def test_rules_and_deliveries_are_in_admin(make_user, receiver):
    from django.contrib.auth import get_user_model

    hook = receiver()
    ivy, _ = make_user("ivy")
    NotificationRule.objects.create(user=ivy, webhook_url=hook.url, channels={"job_failed": ["webhook"]})
    create_notification("ivy", "job_failed", "Job 9 failed", "", "error")
    deliveries.deliver_pending()
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", password=None))
    listing = client.get("/admin/hub/notificationdelivery/")
    assert listing.status_code == 200 and hook.url.encode() in listing.content
    assert client.get("/admin/hub/notificationrule/").status_code == 200
    delivery = NotificationDelivery.objects.get()
    assert client.get(f"/admin/hub/notificationdelivery/{delivery.pk}/change/").status_code == 200
