"""Several clusters through REST (issue 13): the clusters list, ``?cluster=`` on every cluster
endpoint (400 invalid, 404 unknown, the primary by default), rows naming their cluster,
``position`` keyed by the cluster's real channels, private jobs per cluster, watch and
cancel per cluster, and /api/health naming another cluster's stale stream ``jobs.b``.

Rows are written with the ORM as a monitor started with ``--cluster b`` stores them
(``slurm_monitor.clusters``: column "b", key ``b/<id>``); the monitor's side is tested with it."""

from __future__ import annotations

import dataclasses
import time

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from slurm_monitor import clusters, heartbeats
from slurm_monitor.cancel import parse_command
from slurm_monitor.models import ClusterJob, ClusterNode, ClusterStream, JobActionAudit, JobWatch, StreamPosition
from tests.slurm_monitor.test_history import job
from tests.slurm_monitor.test_job_cancel import recorder  # noqa: F401  (fixture)
from tests.slurm_monitor.test_job_detail import client_for
from tests.slurm_monitor.test_alert_rules import node

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()


def seed_job(column: str, job_id: str, user: str = "alice", state: str = "RUNNING", name: str = "") -> None:
    record = dataclasses.asdict(job(job_id, state, user=user, name=name or f"j{job_id}"))
    ClusterJob.objects.create(job_id=clusters.key(column, job_id), cluster=column, user=user, partition="batch",
                              state=state, record=record)


def seed_stream(column: str, stream: str) -> None:
    ClusterStream.objects.create(name=clusters.stream_key(column, stream), cluster=column,
                                 updated_at=timezone.now(), source="test")


@pytest.fixture
def two_clusters():
    """Job 42 on both clusters (alice's on the primary, carol's on b), 43 on b only (bob's)."""
    seed_job("", "42", "alice", name="on-primary")
    seed_job("b", "42", "carol", name="on-b")
    seed_job("b", "43", "bob", "PENDING")
    for column in ("", "b"):
        seed_stream(column, "jobs")
    ClusterNode.objects.create(name="cn01", cluster="", state="IDLE", record=dataclasses.asdict(node("cn01")))
    ClusterNode.objects.create(name="b/bn01", cluster="b", state="IDLE", record=dataclasses.asdict(node("bn01")))
    StreamPosition.objects.create(channel="jobs", offset=5, epoch="e1")
    StreamPosition.objects.create(channel="jobs.b", offset=7, epoch="e2")


def test_the_clusters_list_names_channels_and_counts(two_clusters):
    body = client_for("viewer").get("/api/cluster/clusters").json()
    assert body["primary"] == "default"
    listed = {c["name"]: c for c in body["clusters"]}
    assert [c["name"] for c in body["clusters"]] == ["default", "b"]  # the primary first
    assert listed["default"]["channels"] == {"jobs": "jobs", "nodes": "nodes", "metrics": "metrics"}
    assert listed["b"]["channels"] == {"jobs": "jobs.b", "nodes": "nodes.b", "metrics": "metrics.b"}
    assert (listed["default"]["primary"], listed["b"]["primary"]) == (True, False)
    assert (listed["b"]["jobs"], listed["b"]["nodes"], listed["default"]["jobs"]) == (2, 1, 1)
    assert listed["b"]["updated_at"]["jobs"] is not None and listed["b"]["updated_at"]["metrics"] is None
    assert APIClient().get("/api/cluster/clusters").status_code in (401, 403)


def test_one_cluster_lists_the_primary_alone(settings):
    settings.SLURM_MONITOR_CLUSTER = "tycho"
    body = client_for("viewer").get("/api/cluster/clusters").json()
    assert body["primary"] == "tycho" and [c["name"] for c in body["clusters"]] == ["tycho"]
    assert body["clusters"][0]["channels"]["jobs"] == "jobs"


def test_the_same_job_id_on_two_clusters(two_clusters):
    api = client_for("viewer")
    primary = api.get("/api/cluster/jobs").json()
    on_b = api.get("/api/cluster/jobs?cluster=b").json()
    assert [(j["job_id"], j["name"], j["cluster"]) for j in primary["results"]] == [("42", "on-primary", "default")]
    assert [(j["job_id"], j["cluster"]) for j in on_b["results"]] == [("42", "b"), ("43", "b")]
    assert (primary["cluster"], on_b["cluster"]) == ("default", "b")
    assert api.get("/api/cluster/jobs?cluster=default").json()["results"] == primary["results"]
    assert api.get("/api/cluster/jobs/42").json()["job"]["name"] == "on-primary"
    detail = api.get("/api/cluster/jobs/42?cluster=b").json()
    assert (detail["job"]["name"], detail["job"]["cluster"], detail["cluster"]) == ("on-b", "b", "b")
    assert api.get("/api/cluster/jobs/43").status_code == 404  # only on b
    assert api.get("/api/cluster/jobs?cluster=b&job=43").json()["count"] == 1
    assert api.get("/api/cluster/jobs?cluster=b&search=4").json()["count"] == 2
    assert api.get("/api/cluster/jobs?cluster=b&state=PENDING").json()["states"] == {"PENDING": 1}


def test_keyset_pages_of_another_cluster_use_its_slurm_ids(two_clusters):
    api = client_for("viewer")
    first = api.get("/api/cluster/jobs?cluster=b&limit=1").json()
    assert first["next"] == "42"
    second = api.get("/api/cluster/jobs?cluster=b&limit=1&after=42").json()
    assert [j["job_id"] for j in second["results"]] == ["43"] and second["next"] is None


def test_position_keys_are_the_clusters_real_channels(two_clusters):
    api = client_for("viewer")
    assert api.get("/api/cluster/jobs").json()["position"] == {"jobs": {"offset": 5, "epoch": "e1"}}
    assert api.get("/api/cluster/jobs?cluster=b").json()["position"] == {"jobs.b": {"offset": 7, "epoch": "e2"}}
    assert api.get("/api/cluster/jobs/42?cluster=b").json()["position"] == {"jobs.b": {"offset": 7, "epoch": "e2"}}
    nodes = api.get("/api/cluster/nodes?cluster=b").json()
    assert list(nodes["position"]) == ["nodes.b"]
    assert [(n["node"], n["cluster"]) for n in nodes["results"]] == [("bn01", "b")]
    assert [n["node"] for n in api.get("/api/cluster/nodes").json()["results"]] == ["cn01"]
    metrics = api.get("/api/cluster/metrics?cluster=b").json()
    assert list(metrics["position"]) == ["metrics.b"] and metrics["cluster"] == "b"


@pytest.mark.parametrize("path", ["/api/cluster/jobs", "/api/cluster/nodes", "/api/cluster/metrics",
                                  "/api/cluster/jobs/42", "/api/cluster/jobs?view=finished"])
def test_unknown_cluster_is_404_and_invalid_name_400(two_clusters, path):
    api = client_for("viewer")
    sep = "&" if "?" in path else "?"
    unknown = api.get(f"{path}{sep}cluster=nowhere")
    assert unknown.status_code == 404 and unknown["Content-Type"] == "application/json"
    for bad in ("b.x", "b/42", "-b", "x" * 41, "jobs:1"):
        answer = api.get(path + sep + "cluster=" + bad)
        assert answer.status_code == 400 and answer["Content-Type"] == "application/json", bad
        assert "cluster" in answer.content.decode()
    assert api.post("/api/cluster/jobs/42/watch?cluster=nowhere").status_code == 404


def test_alerts_list_per_cluster(two_clusters):
    ClusterStream.objects.create(name=clusters.stream_key("b", "alerts"), cluster="b", updated_at=timezone.now(),
                                 data={"active": [{"alert_id": "node_down:bn01"}]})
    staff = client_for("root", staff=True)
    assert staff.get("/api/cluster/alerts").json()["results"] == []
    assert staff.get("/api/cluster/alerts?cluster=b").json()["results"] == [{"alert_id": "node_down:bn01",
                                                                             "cluster": "b"}]


def test_private_jobs_per_cluster(settings, two_clusters):
    settings.HUB = {**settings.HUB, "PRIVATE_JOBS": True}
    seed_job("b", "44", "alice")
    StreamPosition.objects.create(channel="user:bob", offset=3, epoch="e3")
    bob, alice = client_for("bob"), client_for("alice")
    assert bob.get("/api/cluster/jobs/44?cluster=b").status_code == 404  # alice's job on b
    assert [j["job_id"] for j in alice.get("/api/cluster/jobs?cluster=b").json()["results"]] == ["44"]
    mine = bob.get("/api/cluster/jobs?cluster=b").json()
    assert [j["job_id"] for j in mine["results"]] == ["43"]
    assert mine["position"] == {"user:bob": {"offset": 3, "epoch": "e3"}}  # shared: events name the cluster
    assert bob.get("/api/cluster/jobs?cluster=b&user=alice").json()["results"] == []
    assert bob.get("/api/cluster/jobs").json()["results"] == []  # nothing of bob's on the primary


def test_watch_records_the_cluster(two_clusters):
    api = client_for("viewer")
    assert api.post("/api/cluster/jobs/42/watch?cluster=b").status_code == 204
    assert api.post("/api/cluster/jobs/42/watch").status_code == 204
    assert api.post("/api/cluster/jobs/43/watch").status_code == 404  # 43 is b's
    assert sorted(JobWatch.objects.values_list("cluster", "job_id")) == [("", "42"), ("b", "42")]


def test_cancel_off_the_primary_needs_the_cluster_placeholder(settings, two_clusters, recorder):  # noqa: F811
    script, calls = recorder
    settings.SLURM_MONITOR_CANCEL_COMMAND = parse_command(f"{script} {{job_id}}")
    staff = client_for("root", staff=True)
    refused = staff.post("/api/cluster/jobs/42/cancel?cluster=b")
    assert refused.status_code == 409 and refused.json()["code"] == "needs_cluster"
    assert calls() == []  # never the same id on the wrong cluster
    assert list(JobActionAudit.objects.values_list("job_id", "cluster", "result")) == [("42", "b", "needs_cluster")]
    assert staff.post("/api/cluster/jobs/42/cancel").status_code == 202  # the primary needs no placeholder
    assert calls() == [["42"]]

    settings.SLURM_MONITOR_CANCEL_COMMAND = parse_command(f"{script} -M {{cluster}} {{job_id}}")
    answer = staff.post("/api/cluster/jobs/42/cancel?cluster=b")
    assert answer.status_code == 202 and answer.json() == {"job_id": "42", "cluster": "b", "status": "requested"}
    assert calls()[-1] == ["-M", "b", "42"]
    assert JobActionAudit.objects.order_by("-id").values_list("cluster", "result")[0] == ("b", "ok")
    assert staff.post("/api/cluster/jobs/43/cancel").status_code == 404  # 43 is b's, not the primary's


def test_health_names_another_clusters_stale_stream():
    """Real heartbeat rows, as the two monitors write them (heartbeats.record_heartbeat)."""
    heartbeats.record_heartbeat("jobs", True, 10.0)  # the primary
    heartbeats.record_heartbeat("jobs", True, 10.0, cluster="b")
    heartbeats.record_heartbeat("nodes", True, 10.0, cluster="b")
    late = ClusterStream.objects.get(name=clusters.key("b", heartbeats.HEARTBEAT_PREFIX + "jobs"))
    late.data = {**late.data, "last_ok_at": time.time() - 300}
    late.save()
    body = APIClient().get("/api/health").json()
    assert body["status"] == "degraded" and list(body["stale"]) == ["jobs.b"]
    assert sorted(body["streams"]) == ["jobs", "jobs.b", "nodes.b"]


def test_finished_view_per_cluster(two_clusters):
    seed_job("b", "40", "carol", "COMPLETED")
    ClusterJob.objects.filter(job_id="b/40").update(ended_at=timezone.now(), left_queue_at=timezone.now())
    api = client_for("viewer")
    finished = api.get("/api/cluster/jobs?view=finished&cluster=b").json()
    assert [(j["job_id"], j["cluster"], j["in_queue"]) for j in finished["results"]] == [("40", "b", False)]
    assert api.get("/api/cluster/jobs?view=finished").json()["results"] == []
    assert api.get("/api/cluster/jobs?view=all&cluster=b").json()["count"] == 3


def test_the_job_page_reads_the_cluster(two_clusters):
    import json
    import re

    from django.contrib.auth import get_user_model
    from django.test import Client

    browser = Client()
    browser.force_login(get_user_model().objects.create_user("viewer"))
    page = browser.get("/jobs/43?cluster=b")
    assert page.status_code == 200
    config = json.loads(re.search(r'id="jobpage-config" type="application/json">(.*?)</script>',
                                  page.content.decode()).group(1))
    base = "/api/cluster/jobs/43"
    assert config["api"] == {"detail": f"{base}?cluster=b", "cancel": f"{base}/cancel?cluster=b",
                             "watch": f"{base}/watch?cluster=b"}
    assert (config["cluster"], config["severalClusters"]) == ("b", True)
    assert browser.get("/jobs/43").status_code == 404  # 43 is b's
    assert browser.get("/jobs/42?cluster=nowhere").status_code == 404
    assert browser.get("/jobs/42?cluster=b.x").status_code == 404
    dashboard = browser.get("/").content.decode()
    assert '"channels": {"jobs": "jobs.b", "nodes": "nodes.b", "metrics": "metrics.b"}' in dashboard


def test_acknowledging_names_the_clusters_alert(two_clusters, monkeypatch):
    import hub.publish
    from slurm_monitor.clusters import key
    from slurm_monitor.models import Alert

    async def record(channel, event, data):
        return 1
    monkeypatch.setattr(hub.publish, "publish", record)
    for column in ("", "b"):  # the same rule on both; b's wire id names b (alerting: clusters.key)
        Alert.objects.create(rule_name="queue_deep", alert_id=key(column, "queue_deep"), cluster=column,
                             severity="warning", pending_since=timezone.now(), raised_at=timezone.now())
    staff = client_for("root", staff=True)
    answer = staff.post("/api/cluster/alerts/b/queue_deep/acknowledge?cluster=b")
    assert answer.status_code == 200 and answer.json()["cluster"] == "b"
    assert answer.json()["alert_id"] == "b/queue_deep"
    assert dict(Alert.objects.values_list("cluster", "acknowledged_by")) == {"": "", "b": "root"}
    # the id alone names the cluster (as the dashboard's button sends it, %2F-escaped)
    assert staff.post("/api/cluster/alerts/b%2Fqueue_deep/silence", {"minutes": 5},
                      format="json").status_code == 200
    assert Alert.objects.get(cluster="b").silenced_until is not None
    assert Alert.objects.get(cluster="").silenced_until is None
    # a ?cluster= that contradicts the id, or an unknown cluster, finds nothing
    assert staff.post("/api/cluster/alerts/b/queue_deep/acknowledge?cluster=default").status_code == 404
    assert staff.post("/api/cluster/alerts/queue_deep/silence?cluster=nowhere", {"minutes": 5},
                      format="json").status_code == 404
    assert staff.post("/api/cluster/alerts/queue_deep/acknowledge").status_code == 200


def test_admin_lists_and_filters_by_cluster(two_clusters):
    from django.contrib.auth import get_user_model
    from django.test import Client

    browser = Client()
    browser.force_login(get_user_model().objects.create_superuser("admin", "a@example.org", "x"))
    page = browser.get("/admin/slurm_monitor/clusterjob/?cluster=b").content.decode()
    assert "b/42" in page and "b/43" in page and ">42<" not in page
    assert browser.get("/admin/slurm_monitor/clusternode/?cluster=b").status_code == 200
    assert browser.get("/admin/slurm_monitor/alert/?cluster=b").status_code == 200
    assert browser.get("/admin/slurm_monitor/jobactionaudit/?cluster=b").status_code == 200
