"""store (latest state in the database) and GET /api/cluster/{jobs,nodes,metrics}."""

from __future__ import annotations

import dataclasses

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from slurm_monitor import store, store_read
from slurm_monitor.collector import CollectError, SlurmCollector
from slurm_monitor.events import build_metrics_update, job_fields, node_fields
from slurm_monitor.metrics import compute_metrics
from slurm_monitor.models import ClusterJob, ClusterNode, JobTransition
from slurm_monitor.monitor import Monitor
from tests.slurm_monitor import shapes
from tests.slurm_monitor.test_monitor import RecordingSink, ScriptedSlurm, squeue
from tests.slurm_monitor.test_snapshot import EXPECTED_JOBS, EXPECTED_NODES, expected_jobs

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
async def _close_worker_thread_connections():
    """ORM calls made through sync_to_async run in asgiref's worker thread: close its
    connection, or PostgreSQL cannot drop the test database."""
    yield
    from django.db import connections

    await sync_to_async(connections.close_all)()


@pytest.fixture
def client():
    user = get_user_model().objects.create_user("viewer", password="x")
    api = APIClient()
    api.force_authenticate(user)
    return api


def saved_everything():
    store.save_jobs(None, EXPECTED_JOBS, "test")
    store.save_nodes(None, EXPECTED_NODES, "test")
    store.save_metrics(build_metrics_update(compute_metrics(EXPECTED_JOBS, EXPECTED_NODES),
                                            1700000000.0).data, "test")


def test_save_and_load_round_trip():
    assert store.load_jobs() is None and store.load_nodes() is None  # never saved: no baseline
    saved_everything()
    assert store.load_jobs() == EXPECTED_JOBS
    assert store.load_nodes() == EXPECTED_NODES


def test_an_unreadable_saved_record_means_no_baseline():
    """A record an older release saved (fields this one lacks) is no baseline: load says None."""
    saved_everything()
    ClusterJob.objects.filter(job_id="102").update(record={"job_id": "102", "retired_field": 1})
    assert store.load_jobs() is None
    ClusterNode.objects.filter(pk=ClusterNode.objects.first().pk).update(record={"name": "n"})
    assert store.load_nodes() is None


def test_incremental_saves():
    store.save_jobs(None, EXPECTED_JOBS)
    changed = dict(EXPECTED_JOBS)
    del changed["107"]
    changed["102"] = dataclasses.replace(changed["102"], state="COMPLETED", exit_code=0)
    store.save_jobs(EXPECTED_JOBS, changed)
    assert store.load_jobs() == changed
    assert ClusterJob.objects.get(job_id="102").state == "COMPLETED"
    store.save_jobs(None, {})  # unknown previous: rewrite everything
    assert store.load_jobs() == {}


def test_saves_in_batches_and_only_what_changed(monkeypatch):
    """A save bigger than SAVE_BATCH goes out in several INSERTs (memory) and saves every row
    and transition; a later save writes only the jobs that differ from the previous snapshot:
    an equal copy (a detail fetch that found nothing new) is no write, a changed one is."""
    monkeypatch.setattr(store, "SAVE_BATCH", 2)
    store.save_jobs(None, EXPECTED_JOBS)
    assert store.load_jobs() == EXPECTED_JOBS and len(EXPECTED_JOBS) > 2
    assert JobTransition.objects.count() == len(EXPECTED_JOBS)
    again = {job_id: dataclasses.replace(job) for job_id, job in EXPECTED_JOBS.items()}  # equal copies
    again["102"] = dataclasses.replace(again["102"], state="COMPLETED", exit_code=0)
    assert store.changed_jobs(EXPECTED_JOBS, again) == [again["102"]]
    ClusterJob.objects.update(user="stale")  # a row rewritten by the save would lose this mark
    store.save_jobs(EXPECTED_JOBS, again)
    assert sorted(ClusterJob.objects.exclude(user="stale").values_list("job_id", flat=True)) == ["102"]
    assert JobTransition.objects.filter(job_id="102").count() == 2


def test_jobs_api(client):
    saved_everything()
    body = client.get("/api/cluster/jobs").json()
    assert body["count"] == 7 and body["source"] == "test" and body["updated_at"].endswith("Z")
    # the record, and where it stands in history (issue 14): still listed, not ended
    assert body["results"][0] == {**job_fields(EXPECTED_JOBS["101"]), "in_queue": True, "ended_at": None,
                                  "cluster": "default"}  # the primary cluster's name (issue 13)
    assert body["position"] == {"jobs": None}  # nothing published since these rows were saved
    assert [j["job_id"] for j in body["results"]] == ["101", "102", "103", "104", "105", "106", "107"]


@pytest.mark.parametrize("query, expected", [
    ("?user=alice", ["101", "105", "107"]),
    ("?partition=gpu", ["101", "106"]),
    ("?state=RUNNING", ["102"]),
    ("?state=running,pending", ["101", "102"]),
    ("?user=alice&state=COMPLETED", ["107"]),
    ("?user=nobody", []),
    ("?limit=2&offset=1", ["102", "103"]),
])
def test_jobs_api_filters(client, query, expected):
    saved_everything()
    body = client.get("/api/cluster/jobs" + query).json()
    assert [j["job_id"] for j in body["results"]] == expected


@pytest.mark.parametrize("query, field", [
    ("?state=RUN NING", "state"), ("?state=" + "A" * 40, "state"), ("?limit=0", "limit"),
    ("?limit=abc", "limit"), ("?offset=-1", "offset"), ("?user=" + "u" * 151, "user"),
])
def test_jobs_api_rejects_bad_queries_naming_the_field(client, query, field):
    response = client.get("/api/cluster/jobs" + query)
    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_nodes_and_metrics_api(client):
    saved_everything()
    nodes = client.get("/api/cluster/nodes").json()
    assert nodes["results"] == [{**node_fields(EXPECTED_NODES[n]), "cluster": "default"}
                                for n in sorted(EXPECTED_NODES)]
    drained = client.get("/api/cluster/nodes/?state=DRAINED,DRAINING").json()
    assert [n["node"] for n in drained["results"]] == ["cn02", "gpu02"]
    metrics = client.get("/api/cluster/metrics").json()
    assert metrics["metrics"]["cpu"] == {"total": 224, "allocated": 92, "usage_percent": 41.1}


def test_before_the_monitor_ran(client):
    assert client.get("/api/cluster/jobs").json() == {"count": 0, "results": [], "updated_at": None,
                                                       "source": "", "position": {"jobs": None},
                                                       "states": {}, "next": None, "cluster": "default"}
    assert client.get("/api/cluster/metrics").json() == {"metrics": None, "updated_at": None, "source": "",
                                                         "position": {"metrics": None}, "cluster": "default"}


@pytest.mark.parametrize("path", ["/api/cluster/jobs", "/api/cluster/nodes", "/api/cluster/metrics"])
def test_cluster_api_needs_authentication(path):
    assert APIClient().get(path).status_code == 401


def test_alerts_api_is_for_staff(client):
    store.save_alerts([{"alert_id": "nodes_down", "severity": "critical", "message": "1 node(s) down",
                        "value": 1.0, "threshold": 0.0, "raised_at": "2023-11-14T22:13:20.000Z"}], "test")
    assert client.get("/api/cluster/alerts").status_code == 403
    staff = get_user_model().objects.create_user("boss", password="x", is_staff=True)
    api = APIClient()
    api.force_authenticate(staff)
    body = api.get("/api/cluster/alerts/").json()
    assert body["count"] == 1 and body["results"][0]["alert_id"] == "nodes_down"


@pytest.mark.django_db(transaction=True)
async def test_monitor_saves_state_alerts_and_poll_figures():
    from hub.models import MonitorPollStats

    runner = ScriptedSlurm("24.05", [squeue("24.05", shapes.JOBS), CollectError("timed out")])
    monitor = Monitor(SlurmCollector(runner=runner), RecordingSink(), source="slurm")
    await monitor.poll_jobs()
    await monitor.poll_jobs()  # fails
    await monitor.poll_nodes()
    await monitor.publish_metrics()

    def check():
        assert store.load_jobs() == expected_jobs("24.05") and store.load_nodes() == EXPECTED_NODES
        assert [a["alert_id"] for a in store_read.list_alerts()["results"]] == ["nodes_down"]  # cn03 is down
        # 24.05 says job 106 COMPLETED (still COMPLETING its epilog): no longer running.
        assert store_read.get_metrics()["metrics"]["jobs"] == {"running": 1, "pending": 1, "total": 7}
        stats = {row.stream: (row.polls_total, row.errors_total) for row in MonitorPollStats.objects.all()}
        assert stats == {"jobs": (2, 1), "nodes": (1, 0)}

    await sync_to_async(check)()


@pytest.mark.django_db(transaction=True)
async def test_once_runs_diff_against_the_previous_run():
    """Cron-style --once: each run reports what changed since the last one, alerts included."""
    def once(jobs):
        sink = RecordingSink()
        runner = ScriptedSlurm("25.05", [squeue("25.05", jobs)])
        return Monitor(SlurmCollector(runner=runner), sink), sink

    first, first_sink = once(shapes.JOBS[:1])
    await first.run_once()  # nothing saved yet: a baseline, but cn03 is down
    assert first_sink.events("jobs") == [] and first_sink.events("alerts") == [("alerts", "alert", "")]
    second, second_sink = once(shapes.with_changes(shapes.JOBS[:1], "id", 101, state="RUNNING"))
    await second.run_once()
    assert second_sink.events("jobs") == [("jobs", "job_state_changed", "101")]
    assert second_sink.events("alerts") == []  # still active, already told


@pytest.fixture
def private_jobs(settings):
    settings.HUB = {**settings.HUB, "PRIVATE_JOBS": True}


def _as(username: str, staff: bool = False) -> APIClient:
    api = APIClient()
    api.force_authenticate(get_user_model().objects.create_user(username, is_staff=staff))
    return api


@pytest.mark.parametrize("query, expected", [
    ("", ["101", "105", "107"]),
    ("?user=alice", ["101", "105", "107"]),
    ("?user=bob", []),  # the filter narrows, never widens
    ("?state=COMPLETED", ["107"]),
])
def test_private_jobs_a_user_sees_only_their_own(private_jobs, query, expected):
    saved_everything()
    body = _as("alice").get("/api/cluster/jobs" + query).json()
    assert [j["job_id"] for j in body["results"]] == expected and body["count"] == len(expected)


def test_private_jobs_staff_see_every_job(private_jobs):
    saved_everything()
    assert _as("root", staff=True).get("/api/cluster/jobs").json()["count"] == 7


def test_private_jobs_off_everyone_sees_every_job(client):
    saved_everything()
    assert client.get("/api/cluster/jobs").json()["count"] == 7
