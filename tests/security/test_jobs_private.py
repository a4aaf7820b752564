"""Attacker tests for job history and the job page under HUB_PRIVATE_JOBS (issue 14): another
user's job is a 404 exactly like a job that does not exist (ids reveal nothing), and no filter
or view widens what a user sees."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from slurm_monitor import store
from tests.slurm_monitor.test_history import T0, job, snap

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def private_jobs(settings):
    settings.HUB = {**settings.HUB, "PRIVATE_JOBS": True}


def as_user(username, staff=False):
    api = APIClient()
    api.force_authenticate(get_user_model().objects.create_user(username, is_staff=staff))
    return api


@pytest.fixture
def alices_history():
    live = snap(job("1", user="alice"), job("2", user="alice"), job("3", user="bob"),
                job("11", user="alice", array_job_id="10", array_task_id=1))
    store.save_jobs(None, live, now=T0)
    store.save_jobs(live, snap(job("1", user="alice")), now=T0 + timedelta(minutes=1))  # 2, 3, 11 finished


def test_bob_gets_the_same_404_for_alices_job_as_for_no_job(alices_history):
    bob = as_user("bob")
    for job_id in ("1", "2", "10_1", "11"):
        theirs, nothing = bob.get(f"/api/cluster/jobs/{job_id}"), bob.get("/api/cluster/jobs/424242")
        assert theirs.status_code == nothing.status_code == 404
        assert theirs.json() == nothing.json() == {"code": "not_found", "message": "no such job"}
    assert bob.get("/api/cluster/jobs/3").status_code == 200  # his own, finished


def test_no_view_or_filter_shows_bob_anything_of_alices(alices_history):
    bob = as_user("bob")
    for query in ("?view=finished&user=alice", "?view=all&user=alice", "?view=all", "?view=all&job=2",
                  "?view=finished&job=10_1", "?view=all&job=10"):
        body = bob.get("/api/cluster/jobs" + query).json()
        assert all(j["user"] == "bob" for j in body["results"]), query
        assert "alice" not in str(body["results"])
    assert [j["job_id"] for j in bob.get("/api/cluster/jobs?view=finished").json()["results"]] == ["3"]


def test_bobs_position_is_his_own_channel_never_jobs(alices_history):
    store.save_jobs(snap(job("1", user="alice")), snap(job("1", user="alice")), now=T0,
                    positions={"jobs": (40, "e1"), "user:alice": (7, "e2"), "user:bob": (3, "e3")})
    assert as_user("bob").get("/api/cluster/jobs").json()["position"] == {"user:bob": {"offset": 3, "epoch": "e3"}}
    staff = as_user("root", staff=True)
    assert staff.get("/api/cluster/jobs").json()["position"] == {"jobs": {"offset": 40, "epoch": "e1"}}
    assert staff.get("/api/cluster/jobs/2").status_code == 200


def test_alice_sees_her_own_history_and_page(alices_history):
    alice = as_user("alice")
    assert [j["job_id"] for j in alice.get("/api/cluster/jobs?view=finished").json()["results"]] == ["11", "2"]
    assert alice.get("/api/cluster/jobs/10_1").json()["job"]["user"] == "alice"
