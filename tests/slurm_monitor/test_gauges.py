"""The cluster gauges in /metrics: the monitor's simulated cluster polled once, then every
gauge of a real scrape checked against the job and node rows the monitor stored (counted
here with the ORM, not with the code under test); bounded reason labels, escaping, and the
per-user series only where the site allows it."""

from __future__ import annotations

from collections import Counter

import pytest
from asgiref.sync import sync_to_async
from django.db.models import Count
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from slurm_monitor import store
from slurm_monitor.collector import SlurmCollector
from slurm_monitor.exporter import save_gauges
from slurm_monitor.metrics import ACTIVE_JOB_STATES, OTHER_REASON, gauge_figures, reason_code, top_counts
from slurm_monitor.mock import MockCluster
from slurm_monitor.models import ClusterJob, ClusterNode
from slurm_monitor.monitor import Monitor
from slurm_monitor.snapshot import Job
from tests.slurm_monitor.test_monitor import RecordingSink
from tests.slurm_monitor.test_snapshot import EXPECTED_JOBS, EXPECTED_NODES

MIB = 1024 * 1024


@pytest.fixture(autouse=True)
async def _close_worker_thread_connections():
    yield
    from django.db import connections

    await sync_to_async(connections.close_all)()


C = ("cluster", "default")  # every cluster series is labelled (slurm_monitor.clusters)


def scrape() -> dict[str, dict[tuple, float]]:
    """{family name: {sorted labels: value}} of a real GET /metrics."""
    response = Client().get("/metrics")
    assert response.status_code == 200
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def job(job_id: str, state: str, partition: str = "cpu", user: str = "alice", reason: str | None = None) -> Job:
    return Job(job_id=job_id, name="x", user=user, partition=partition, state=state, reason=reason,
               nodes="", node_count=1, cpus=1, gpus=0, memory_mb=100, submit_time=1, start_time=None,
               end_time=None, time_limit_minutes=None, exit_code=None, signal=None)


@pytest.mark.django_db(transaction=True)
async def test_gauges_match_what_the_monitor_stored():
    clock = lambda: 1_700_000_000.0  # noqa: E731
    cluster = MockCluster(seed=7, clock=clock, submit_per_minute=40.0, warm_up_seconds=600)
    monitor = Monitor(SlurmCollector(runner=cluster.run), RecordingSink(), source="mock", clock=clock)
    await monitor.run_once()

    def expected():
        jobs = {(r["state"], r["partition"]): r["n"]
                for r in ClusterJob.objects.values("state", "partition").annotate(n=Count("job_id"))}
        nodes = {r["state"]: r["n"] for r in ClusterNode.objects.values("state").annotate(n=Count("name"))}
        pending = Counter(reason_code(j.record["reason"]) for j in ClusterJob.objects.filter(state="PENDING"))
        records = [n.record for n in ClusterNode.objects.all()]
        return jobs, nodes, pending, records

    jobs, nodes, pending, records = await sync_to_async(expected)()
    assert len(jobs) >= 3 and sum(pending.values()) > 0, "the simulation should give varied jobs"
    got = await sync_to_async(scrape)()

    assert got["slurm_jobs"] == {(C, ("partition", p), ("state", s)): float(n) for (s, p), n in jobs.items()}
    assert got["slurm_nodes"] == {(C, ("state", s),): float(n) for s, n in nodes.items()}
    assert got["slurm_jobs_pending"] == {(C, ("reason", r),): float(n) for r, n in pending.items()}
    assert got["slurm_cpus"] == {(C, ("kind", "alloc"),): sum(r["alloc_cpus"] for r in records),
                                 (C, ("kind", "total"),): sum(r["cpus"] for r in records)}
    assert got["slurm_gpus"] == {(C, ("kind", "alloc"),): sum(r["alloc_gpus"] for r in records),
                                 (C, ("kind", "total"),): sum(r["gpus"] for r in records)}
    assert got["slurm_memory_bytes"] == {
        (C, ("kind", "alloc"),): sum(min(r["alloc_memory_mb"], r["real_memory_mb"]) for r in records) * MIB,
        (C, ("kind", "total"),): sum(r["real_memory_mb"] for r in records) * MIB}
    assert got["slurm_cluster_gauges_timestamp_seconds"] == {(C,): 1_700_000_000.0}
    assert "slurm_user_jobs_running" not in got  # off by default


@pytest.mark.django_db
def test_alert_states_by_severity():
    assert scrape()["slurm_alerts_active"] == {(C, ("severity", "info"),): 0.0, (C, ("severity", "warning"),): 0.0,
                                               (C, ("severity", "critical"),): 0.0}
    store.save_alerts([{"alert_id": "nodes_down", "severity": "critical"},
                       {"alert_id": "cluster_cpu_high", "severity": "warning"},
                       {"alert_id": "cluster_gpu_high", "severity": "warning"}], "test")
    assert scrape()["slurm_alerts_active"] == {(C, ("severity", "info"),): 0.0, (C, ("severity", "warning"),): 2.0,
                                               (C, ("severity", "critical"),): 1.0}


@pytest.mark.django_db
def test_no_cluster_gauges_before_the_monitor_ran():
    got = scrape()
    assert "slurm_jobs" not in got and "slurm_cpus" not in got
    assert "hub_stats_live" in got  # the rest of /metrics is unaffected


@pytest.mark.parametrize("reason, code", [
    ("Priority", "Priority"), (None, "None"), ("", "None"),
    ("ReqNodeNotAvail, UnavailableNodes:node[01-03]", "ReqNodeNotAvail"),
    ("Dependency: afterok:12", "Dependency"), ("QOSMaxJobsPerUserLimit", "QOSMaxJobsPerUserLimit"),
    ('bad"label\\\n', "badlabel"), ("x" * 500, "x" * 64),
])
def test_reason_code_keeps_only_the_code(reason, code):
    assert reason_code(reason) == code


def test_top_counts_sums_the_rest_as_other():
    counts = {f"R{i:02d}": i for i in range(1, 21)}  # R20 most frequent
    kept = top_counts(counts, 3, OTHER_REASON)
    assert kept == {"R20": 20, "R19": 19, "R18": 18, OTHER_REASON: sum(range(1, 18))}
    assert top_counts({"A": 1}, 3, OTHER_REASON) == {"A": 1}


@pytest.mark.django_db
def test_pending_reasons_stay_bounded_in_the_scrape():
    jobs = {str(i): job(str(i), "PENDING", reason=f"Reason{i % 40}") for i in range(400)}
    save_gauges(gauge_figures(jobs, EXPECTED_NODES, 1.0), "test")
    pending = scrape()["slurm_jobs_pending"]
    assert len(pending) == 16 and pending[(C, ("reason", "other"),)] == 400 - 15 * 10
    assert sum(pending.values()) == 400


@pytest.mark.django_db
def test_label_values_are_escaped():
    weird = 'we"ird\\part\nition'
    save_gauges(gauge_figures({"1": job("1", "RUNNING", partition=weird)}, {}, 1.0), "test")
    assert scrape()["slurm_jobs"] == {(C, ("partition", weird), ("state", "RUNNING")): 1.0}


@pytest.mark.django_db
@pytest.mark.parametrize("setting, private, exported", [
    ("", False, False), ("0", False, False), ("1", False, True), ("true", True, False)])
def test_per_user_series_only_where_the_site_allows(monkeypatch, settings, setting, private, exported):
    monkeypatch.setenv("HUB_METRICS_PER_USER", setting)
    settings.HUB = {**settings.HUB, "PRIVATE_JOBS": private}
    save_gauges(gauge_figures(EXPECTED_JOBS, EXPECTED_NODES, 1.0), "test")
    got = scrape()
    if not exported:
        assert "slurm_user_jobs_running" not in got
        return
    running = Counter(j.user for j in EXPECTED_JOBS.values() if j.state in ACTIVE_JOB_STATES)
    assert running and got["slurm_user_jobs_running"] == {(C, ("user", u),): float(n) for u, n in running.items()}


@pytest.mark.django_db
def test_a_bad_per_user_setting_exports_no_user_and_no_500(monkeypatch):
    monkeypatch.setenv("HUB_METRICS_PER_USER", "maybe")
    save_gauges(gauge_figures(EXPECTED_JOBS, EXPECTED_NODES, 1.0), "test")
    got = scrape()
    assert "slurm_user_jobs_running" not in got and "slurm_jobs" in got
