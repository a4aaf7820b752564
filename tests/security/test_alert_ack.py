"""Issue 11 rules on issue 15's new road: acknowledging or silencing an alert is staff-only.
A plain user (even one the alert is about) and a caller with no credentials are refused with a
JSON error, and nothing changes: no acknowledgement, no audit row, nothing published."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from slurm_monitor import alerting
from slurm_monitor.models import Alert, AlertRule
from tests.slurm_monitor.test_snapshot import EXPECTED_JOBS, EXPECTED_NODES


@pytest.fixture
def published(monkeypatch):
    import hub.publish

    sent: list = []

    async def record(channel, event, data):
        sent.append((channel, event, data))
        return len(sent)

    monkeypatch.setattr(hub.publish, "publish", record)
    return sent


@pytest.fixture
def alert(db) -> Alert:
    AlertRule.objects.create(name="cpu_busy", metric="cpu_alloc_percent", threshold=30.0)
    alerting.evaluate_and_record(EXPECTED_JOBS, EXPECTED_NODES, 1_700_000_000.0)
    return Alert.objects.get(rule_name="cpu_busy")


def assert_untouched(alert: Alert, published: list) -> None:
    alert.refresh_from_db()
    assert alert.acknowledged_by == "" and alert.acknowledged_at is None and alert.silenced_until is None
    assert list(alert.audit.values_list("action", flat=True)) == ["raised"]
    assert published == []


ROADS = [("acknowledge", None), ("silence", {"minutes": 60})]


@pytest.mark.parametrize("action,body", ROADS)
def test_a_plain_user_is_refused_with_json_403(alert, published, django_capture_on_commit_callbacks, action, body):
    client = Client()
    client.force_login(get_user_model().objects.create_user("mallory", password="x"))
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(f"/api/cluster/alerts/cpu_busy/{action}", body, content_type="application/json")
    assert answer.status_code == 403 and answer.json()["code"] == "permission_denied", answer.content
    # An unknown id answers the same: a plain user learns nothing about which alerts exist.
    unknown = client.post(f"/api/cluster/alerts/nope/{action}", body, content_type="application/json")
    assert unknown.status_code == 403 and unknown.json() == answer.json()
    assert_untouched(alert, published)


@pytest.mark.parametrize("action,body", ROADS)
def test_no_credentials_is_refused(alert, published, django_capture_on_commit_callbacks, action, body):
    with django_capture_on_commit_callbacks(execute=True):
        answer = Client().post(f"/api/cluster/alerts/cpu_busy/{action}", body, content_type="application/json")
    assert answer.status_code in (401, 403) and answer["Content-Type"].startswith("application/json")
    assert answer.json()["code"] in ("not_authenticated", "authentication_failed", "permission_denied")
    assert_untouched(alert, published)


def test_a_forged_bearer_token_is_refused(alert, published):
    answer = Client().post("/api/cluster/alerts/cpu_busy/acknowledge", HTTP_AUTHORIZATION="Bearer not.a.jwt")
    assert answer.status_code == 401 and answer.json()["code"] in ("token_not_valid", "authentication_failed")
    assert_untouched(alert, published)


def test_a_staff_session_without_the_csrf_token_is_refused(alert, published):
    """A page on another site cannot make a logged-in staff member's browser acknowledge."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(get_user_model().objects.create_user("boss", password="x", is_staff=True))
    answer = client.post("/api/cluster/alerts/cpu_busy/acknowledge")
    assert answer.status_code == 403 and answer.json()["code"] == "permission_denied", answer.content
    assert "CSRF" in answer.json()["message"]
    assert_untouched(alert, published)
