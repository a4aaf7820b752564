"""POST /api/cluster/jobs/<id>/watch (issue 14): an open job page's interest, with the job
page's visibility rules, bounded per user, throttled, JSON errors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from slurm_monitor import interest, store
from slurm_monitor.models import JobWatch
from tests.slurm_monitor.test_history import T0, job, snap

pytestmark = pytest.mark.django_db


def client_for(username, staff=False):
    api = APIClient()
    user = get_user_model().objects.create_user(username, is_staff=staff)
    api.force_authenticate(user)
    return api, user


@pytest.fixture
def private_jobs(settings):
    settings.HUB = {**settings.HUB, "PRIVATE_JOBS": True}


def test_watching_a_visible_job_records_interest_for_two_minutes():
    store.save_jobs(None, snap(job("5", user="alice")), now=T0)
    api, bob = client_for("bob")
    before = datetime.now(timezone.utc)
    answer = api.post("/api/cluster/jobs/5/watch")
    after = datetime.now(timezone.utc)
    assert answer.status_code == 204 and answer.content == b""
    watch = JobWatch.objects.get(user=bob)
    assert watch.job_id == "5"
    # Two minutes from when the request ran: bounded by the clock on both sides, not by how
    # long the request took.
    assert before + timedelta(seconds=120) <= watch.expires_at <= after + timedelta(seconds=120)
    assert api.post("/api/cluster/jobs/5/watch/").status_code == 204  # the refresh: still one row
    assert JobWatch.objects.filter(user=bob).count() == 1


def test_an_array_task_is_watched_by_its_job_id():
    store.save_jobs(None, snap(job("11", array_job_id="10", array_task_id=1)), now=T0)
    api, user = client_for("viewer")
    assert api.post("/api/cluster/jobs/10_1/watch").status_code == 204
    assert list(JobWatch.objects.values_list("job_id", flat=True)) == ["11"]


@pytest.mark.parametrize("job_id", ["999", "10_9", "abc", "1;DROP", "9" * 40, "-1"])
def test_unknown_or_malformed_ids_are_a_json_404(job_id):
    store.save_jobs(None, snap(job("5")), now=T0)
    api, _ = client_for("viewer")
    answer = api.post(f"/api/cluster/jobs/{job_id}/watch")
    assert answer.status_code == 404 and answer["Content-Type"] == "application/json"
    assert answer.json() == {"code": "not_found", "message": "no such job"}
    assert not JobWatch.objects.exists()


def test_watching_needs_authentication_and_post():
    store.save_jobs(None, snap(job("5")), now=T0)
    assert APIClient().post("/api/cluster/jobs/5/watch").status_code == 401
    api, _ = client_for("viewer")
    answer = api.get("/api/cluster/jobs/5/watch")
    assert answer.status_code == 405 and answer["Content-Type"] == "application/json"


def test_private_jobs_another_users_job_is_a_404_and_records_nothing(private_jobs):
    store.save_jobs(None, snap(job("5", user="alice"), job("6", user="bob")), now=T0)
    api, _ = client_for("bob")
    assert api.post("/api/cluster/jobs/5/watch").json() == {"code": "not_found", "message": "no such job"}
    assert api.post("/api/cluster/jobs/6/watch").status_code == 204
    staff, _ = client_for("admin", staff=True)
    assert staff.post("/api/cluster/jobs/5/watch").status_code == 204
    assert sorted(JobWatch.objects.values_list("user__username", "job_id")) == [("admin", "5"), ("bob", "6")]


def test_a_user_holds_at_most_n_watches_the_stalest_go():
    jobs = [job(str(n)) for n in range(1, interest.MAX_WATCHES_PER_USER + 6)]
    store.save_jobs(None, snap(*jobs), now=T0)
    api, user = client_for("viewer")
    start = datetime.now(timezone.utc)
    for n, j in enumerate(jobs):  # each later than the one before
        interest.record_watch(user, j.job_id, now=start + timedelta(seconds=n))
    kept = set(JobWatch.objects.filter(user=user).values_list("job_id", flat=True))
    assert kept == {j.job_id for j in jobs[-interest.MAX_WATCHES_PER_USER:]}
    # expired rows go as well, from the endpoint and from the monitor's read
    interest.record_watch(user, "1", now=start + timedelta(seconds=interest.WATCH_SECONDS + 100))
    assert list(JobWatch.objects.filter(user=user).values_list("job_id", flat=True)) == ["1"]
    assert interest.watched_job_ids(start + timedelta(days=1)) == [] and not JobWatch.objects.exists()


def test_the_watch_endpoint_is_throttled_like_other_rest(monkeypatch):
    from django.core.cache import cache

    store.save_jobs(None, snap(job("5")), now=T0)
    monkeypatch.setenv("HUB_API_RATE_LIMIT", "3/min")
    cache.clear()
    api, _ = client_for("viewer")
    answers = [api.post("/api/cluster/jobs/5/watch") for _ in range(4)]
    assert [a.status_code for a in answers] == [204, 204, 204, 429]
    assert answers[3]["Content-Type"] == "application/json"


def test_the_watch_endpoint_is_in_the_openapi_schema():
    import yaml
    from django.test import Client

    schema = yaml.safe_load(Client().get("/api/schema").content)
    operation = schema["paths"]["/api/cluster/jobs/{job_id}/watch"]["post"]
    assert {"204", "404"} <= set(operation["responses"])
    detail = schema["components"]["schemas"]["ClusterJobDetail"]["properties"]
    assert {"start_estimate", "live_efficiency"} <= set(detail)
