"""Issue 15: acknowledging an alert over REST (the dashboard's road) does what the admin action
does, through the same function: stores who and when, audits it, and publishes
``alert_acknowledged`` on ``alerts``; once only (idempotent). Silence is bounded."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from slurm_monitor import alerting
from slurm_monitor.models import Alert, AlertRule
from tests.slurm_monitor.test_snapshot import EXPECTED_JOBS, EXPECTED_NODES

T0 = 1_700_000_000.0


@pytest.fixture
def published(monkeypatch):
    """What reaches ``hub.publish.publish`` (channel, event, data)."""
    import hub.publish

    sent: list[tuple[str, str, dict]] = []

    async def record(channel, event, data):
        sent.append((channel, event, data))
        return len(sent)

    monkeypatch.setattr(hub.publish, "publish", record)
    return sent


def staff(username: str = "boss") -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_user(username, password="x", is_staff=True))
    return client


def raised_alert() -> Alert:
    AlertRule.objects.create(name="cpu_busy", metric="cpu_alloc_percent", threshold=30.0, severity="warning")
    alerting.evaluate_and_record(EXPECTED_JOBS, EXPECTED_NODES, T0)
    return Alert.objects.get(rule_name="cpu_busy")


@pytest.mark.django_db
def test_acknowledge_stores_audits_and_publishes_once(published, django_capture_on_commit_callbacks):
    alert = raised_alert()
    client = staff()
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post("/api/cluster/alerts/cpu_busy/acknowledge")
    assert first.status_code == 200, first.content
    body = first.json()
    assert body["alert_id"] == "cpu_busy" and body["acknowledged_by"] == "boss"
    assert body["status"] == "acknowledged" and body["acknowledged_at"].endswith("Z")
    alert.refresh_from_db()
    assert alert.acknowledged_by == "boss" and alert.acknowledged_at is not None
    assert list(alert.audit.values_list("action", "actor")) == [("raised", "monitor"), ("acknowledged", "boss")]
    assert published == [("alerts", "alert_acknowledged", {
        "alert_id": "cpu_busy", "acknowledged_by": "boss", "acknowledged_at": body["acknowledged_at"]})]

    # Again, by someone else: the same answer, nothing new stored or pushed.
    with django_capture_on_commit_callbacks(execute=True):
        again = staff("other").post("/api/cluster/alerts/cpu_busy/acknowledge/")
    assert again.status_code == 200 and again.json() == body
    assert alert.audit.filter(action="acknowledged").count() == 1 and len(published) == 1
    # The active-alerts stream shows it too (a page's first paint).
    listed = client.get("/api/cluster/alerts").json()["results"]
    assert [(a["alert_id"], a["acknowledged_by"]) for a in listed] == [("cpu_busy", "boss")]


@pytest.mark.django_db
def test_the_admin_action_publishes_the_same_event(published, django_capture_on_commit_callbacks):
    alert = raised_alert()
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", password="x"))
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post("/admin/slurm_monitor/alert/", {"action": "acknowledge", "_selected_action": [alert.pk]},
                           follow=True)
    assert "1 alert(s) acknowledged" in done.content.decode()
    assert [(c, e, d["alert_id"], d["acknowledged_by"]) for c, e, d in published] == [
        ("alerts", "alert_acknowledged", "cpu_busy", "root")]


@pytest.mark.django_db
def test_unknown_pending_or_resolved_alerts_are_a_json_404(published):
    client = staff()
    for alert_id in ("nope", "x" * 400, "cpu_busy"):
        answer = client.post(f"/api/cluster/alerts/{alert_id}/acknowledge")
        assert answer.status_code == 404 and answer.json()["code"] == "not_found", answer.content
    alert = raised_alert()
    alert.resolved_at = alert.raised_at
    alert.save()
    answer = client.post("/api/cluster/alerts/cpu_busy/acknowledge")
    assert answer.status_code == 404 and answer["Content-Type"].startswith("application/json")
    assert published == []


@pytest.mark.django_db
def test_silence_is_bounded_and_audited(published):
    alert = raised_alert()
    client = staff()
    for bad in ({}, {"minutes": 0}, {"minutes": 10081}, {"minutes": "soon"}, {"minutes": -5}):
        answer = client.post("/api/cluster/alerts/cpu_busy/silence", bad, content_type="application/json")
        assert answer.status_code == 400 and "minutes" in answer.json()["message"], (bad, answer.content)
    answer = client.post("/api/cluster/alerts/cpu_busy/silence", {"minutes": 10080}, content_type="application/json")
    assert answer.status_code == 200 and answer.json()["status"] == "silenced", answer.content
    assert answer.json()["silenced_until"].endswith("Z")
    alert.refresh_from_db()
    assert alert.status == "silenced"
    assert list(alert.audit.values_list("action", "actor")) == [("raised", "monitor"), ("silenced", "boss")]


@pytest.mark.django_db
def test_the_endpoints_are_in_the_openapi_schema():
    paths = Client().get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    ack = paths["/api/cluster/alerts/{alert_id}/acknowledge"]["post"]
    assert {"200", "404", "403"} <= set(ack["responses"]), ack["responses"].keys()
    silence = paths["/api/cluster/alerts/{alert_id}/silence"]["post"]
    assert {"200", "400", "404"} <= set(silence["responses"])
    assert silence["requestBody"]["content"]["application/json"]["schema"]
