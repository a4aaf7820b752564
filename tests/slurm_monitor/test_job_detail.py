"""GET /api/cluster/jobs/<job_id>: one job, live or finished, with transitions and efficiency."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from slurm_monitor import history, store
from slurm_monitor.sacct import parse_sacct
from tests.slurm_monitor.test_history import T0, job, snap
from tests.slurm_monitor.test_sacct import doc, job_v0038

pytestmark = pytest.mark.django_db


def client_for(username, staff=False):
    api = APIClient()
    api.force_authenticate(get_user_model().objects.create_user(username, is_staff=staff))
    return api


def test_a_live_job_with_its_transitions():
    store.save_jobs(None, snap(job("5", "PENDING")), now=T0)
    store.save_jobs(snap(job("5", "PENDING")), snap(job("5")), now=T0 + timedelta(seconds=9))
    answer = client_for("viewer").get("/api/cluster/jobs/5")
    assert answer.status_code == 200 and answer["Content-Type"] == "application/json"
    body = answer.json()
    assert body["job"]["job_id"] == "5" and body["job"]["state"] == "RUNNING" and body["job"]["in_queue"] is True
    assert [t["state"] for t in body["transitions"]] == ["PENDING", "RUNNING"]
    assert body["transitions"][1]["at"] == "2023-11-14T22:15:00.000Z"  # Slurm's start time
    assert body["accounting"] is None and body["efficiency"] is None  # unknown until it ended


def test_a_finished_job_with_its_efficiency():
    store.save_jobs(None, snap(job("201")), now=T0)
    store.save_jobs(snap(job("201")), {}, now=T0 + timedelta(minutes=1))
    accounting = parse_sacct(doc(job_v0038(201)))["201"].as_dict()
    history.save_accounting(["201"], {"201": accounting}, T0)
    body = client_for("viewer").get("/api/cluster/jobs/201/").json()
    assert body["job"]["in_queue"] is False and body["job"]["state"] == "COMPLETED"
    assert body["accounting"]["working_directory"] == "/home/alice/run1"
    assert body["efficiency"]["cpu"]["percent"] == 50.0 and body["efficiency"]["memory"]["percent"] == 25.0


def test_an_array_task_by_its_sbatch_id():
    task = job("11", array_job_id="10", array_task_id=1)
    store.save_jobs(None, snap(task), now=T0)
    assert client_for("viewer").get("/api/cluster/jobs/10_1").json()["job"]["job_id"] == "11"


@pytest.mark.parametrize("job_id", ["999", "10_9", "abc", "1;DROP", "9" * 40])
def test_unknown_or_malformed_ids_are_a_json_404(job_id):
    store.save_jobs(None, snap(job("5")), now=T0)
    answer = client_for("viewer").get(f"/api/cluster/jobs/{job_id}")
    assert answer.status_code == 404 and answer["Content-Type"] == "application/json"
    assert answer.json() == {"code": "not_found", "message": "no such job"}


def test_needs_authentication():
    store.save_jobs(None, snap(job("5")), now=T0)
    assert APIClient().get("/api/cluster/jobs/5").status_code == 401


def test_without_private_jobs_anyone_authenticated_sees_any_job():
    store.save_jobs(None, snap(job("5", user="alice")), now=T0)
    assert client_for("bob").get("/api/cluster/jobs/5").status_code == 200


def test_the_endpoint_is_in_the_openapi_schema():
    import yaml
    from django.test import Client

    schema = yaml.safe_load(Client().get("/api/schema").content)
    operation = schema["paths"]["/api/cluster/jobs/{job_id}"]["get"]
    assert {"200", "404"} <= set(operation["responses"])
    assert "position" in schema["components"]["schemas"]["ClusterList"]["required"]


def test_the_detail_carries_the_stream_position_read_with_it():
    """Issue 14: the job page subscribes ``since`` this position (PROTOCOL.md section 6)."""
    store.save_jobs(None, snap(job("5", "PENDING")), now=T0, positions={"jobs": (41, "e1")})
    body = client_for("viewer").get("/api/cluster/jobs/5").json()
    assert body["position"] == {"jobs": {"offset": 41, "epoch": "e1"}}
    assert body["steps"] == []


def test_private_jobs_position_is_the_users_own_channel(settings):
    settings.HUB = {**settings.HUB, "PRIVATE_JOBS": True}
    store.save_jobs(None, snap(job("5", user="alice")), now=T0, positions={"user:alice": (3, "e2"), "jobs": (9, "e2")})
    position = client_for("alice").get("/api/cluster/jobs/5").json()["position"]
    assert position == {"user:alice": {"offset": 3, "epoch": "e2"}}
    assert client_for("bob").get("/api/cluster/jobs/5").status_code == 404


def test_accounting_fills_what_squeue_left_empty_and_lists_steps():
    store.save_jobs(None, snap(job("201")), now=T0)
    store.save_jobs(snap(job("201")), {}, now=T0 + timedelta(minutes=1))
    history.save_accounting(["201"], {"201": parse_sacct(doc(job_v0038(201)))["201"].as_dict()}, T0)
    body = client_for("viewer").get("/api/cluster/jobs/201").json()
    assert (body["job"]["account"], body["job"]["qos"], body["job"]["working_directory"]) == \
        ("physics", "normal", "/home/alice/run1")
    assert [s["step"] for s in body["steps"]] == ["batch"]
