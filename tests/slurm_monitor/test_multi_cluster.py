"""Several clusters, monitor side (issue 13): one monitor per cluster (``--cluster NAME``) and
one database and hub for all. Two clusters here have the SAME job ids and node names (two
simulated clusters with one seed, two fake Slurms with job 101): each monitor writes, loads,
purges and alerts on its own rows only, and publishes on its own channels (``jobs.b``) with
``cluster`` in every payload, user copies and notifications included."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.management import CommandError, call_command

from slurm_monitor import alerting, gap, heartbeats, history, store
from slurm_monitor.collector import SlurmCollector
from slurm_monitor.mock import build_mock_cluster
from slurm_monitor.models import Alert, ClusterJob, ClusterNode, ClusterStream, StreamPosition
from slurm_monitor.monitor import Monitor
from slurm_monitor.sacct import Accounting
from slurm_monitor.sinks import Sink
from slurm_monitor.snapshot import parse_nodes
from tests.slurm_monitor import shapes
from tests.slurm_monitor.conftest import FakeSlurm
from tests.slurm_monitor.test_monitor import FAILED, PENDING, ScriptedSlurm, squeue
from tests.slurm_monitor.wsclient import Subscriber


class CapturingSink(Sink):
    """Every publication as (target, event, data); every notification."""

    name = "capturing"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []
        self.notes: list[Any] = []

    async def publish(self, channel, event, data):
        self.sent.append((channel, event, data))
        return len(self.sent)

    async def send_to_user(self, username, event, data):
        self.sent.append((f"user:{username}", event, data))
        return len(self.sent)

    async def notify(self, notification):
        self.notes.append(notification)


@pytest.fixture(autouse=True)
async def _close_worker_thread_connections():
    yield
    from django.db import connections

    await sync_to_async(connections.close_all)()


def mock_monitor(cluster: str | None, seed: int = 7) -> Monitor:
    return Monitor(SlurmCollector(runner=build_mock_cluster(seed).run), CapturingSink(), source="mock",
                   cluster=cluster)


def rows(model, **filters) -> dict[str, tuple]:
    fields = ("job_id", "state", "left_queue_at", "ended_at", "record") if model is ClusterJob \
        else ("name", "state", "record")
    return {r[0]: r[1:] for r in model.objects.filter(**filters).values_list(*fields)}


@pytest.mark.django_db(transaction=True)
async def test_two_clusters_with_the_same_ids_share_one_database_without_touching_each_other():
    a, b = mock_monitor(None), mock_monitor("b")
    await a.run_once()
    await b.run_once()
    assert a.jobs and set(a.jobs) & set(b.jobs) and set(a.nodes) & set(b.nodes)  # the same ids

    primary_jobs = await sync_to_async(rows)(ClusterJob, cluster="")
    primary_nodes = await sync_to_async(rows)(ClusterNode, cluster="")
    assert set(primary_jobs) >= set(a.jobs) and set(primary_nodes) == set(a.nodes)  # plain keys
    assert set(await sync_to_async(rows)(ClusterJob, cluster="b")) >= {f"b/{i}" for i in b.jobs}
    assert set(await sync_to_async(rows)(ClusterNode, cluster="b")) == {f"b/{n}" for n in b.nodes}
    assert await sync_to_async(store.load_jobs)("") == a.jobs
    assert await sync_to_async(store.load_jobs)("b") == b.jobs
    assert await sync_to_async(store.load_nodes)("b") == b.nodes

    # b's queue empties and its nodes go: its rows become history / are deleted, a's stay as they were
    def b_loses_everything():
        store.save_jobs(None, {}, "mock", cluster="b")
        store.save_nodes(None, {}, "mock", cluster="b")
        history.purge(datetime.now(timezone.utc) + timedelta(days=1), 100_000, "b")

    await sync_to_async(b_loses_everything)()
    assert await sync_to_async(rows)(ClusterJob, cluster="") == primary_jobs
    assert await sync_to_async(rows)(ClusterNode, cluster="") == primary_nodes
    assert await sync_to_async(rows)(ClusterJob, cluster="b") == {}
    assert await sync_to_async(store.load_jobs)("b") == {} and await sync_to_async(store.load_jobs)("") == a.jobs

    # a restarted b resumes from its own (empty) state, not from a's rows
    again = mock_monitor("b")
    await again.load_baseline()
    assert again.jobs == {} and again.nodes == {}
    # the positions are those of the real channels
    channels = set(await sync_to_async(lambda: list(StreamPosition.objects.values_list("channel", flat=True)))())
    assert {"metrics", "metrics.b"} <= channels  # the first polls were baselines: no job events yet


def scripted_monitor(cluster: str | None) -> tuple[Monitor, CapturingSink]:
    slurm = ScriptedSlurm("23.11", [squeue("23.11", []), squeue("23.11", PENDING), squeue("23.11", FAILED)])
    sink = CapturingSink()
    return Monitor(SlurmCollector(runner=slurm, timeout=5), sink, persist=False, cluster=cluster), sink


@pytest.mark.parametrize("cluster, name, suffix", [(None, "default", ""), ("b", "b", ".b")])
async def test_every_event_and_notification_names_its_cluster_on_its_channels(cluster, name, suffix):
    monitor, sink = scripted_monitor(cluster)
    for _ in range(3):
        await monitor.poll_jobs()
    await monitor.poll_nodes()
    await monitor.publish_metrics()

    targets = [(target, event) for target, event, _data in sink.sent]
    owner = PENDING[0]["user"]
    assert (f"jobs{suffix}", "job_submitted") in targets and (f"user:{owner}", "job_submitted") in targets
    assert (f"jobs{suffix}", "job_state_changed") in targets and (f"metrics{suffix}", "metrics_update") in targets
    assert all(target in (f"jobs{suffix}", f"nodes{suffix}", f"metrics{suffix}", f"user:{owner}", "alerts")
               for target, _event in targets)
    assert all(data["cluster"] == name for _target, _event, data in sink.sent)
    assert [n.type for n in sink.notes] == ["job_failed"] and sink.notes[0].data["cluster"] == name
    assert "cluster" not in PENDING[0]  # the builders stay pure: nothing stamped the inputs


def accounting(job_id: str) -> Accounting:
    unknown = {f.name: None for f in dataclasses.fields(Accounting) if f.default is dataclasses.MISSING}
    return Accounting(**{**unknown, "job_id": job_id, "state": "COMPLETED", "state_flags": (), "gpus": 0,
                         "end_time": 1_700_000_200})


@pytest.mark.django_db
def test_heartbeats_alerts_gap_and_history_are_per_cluster():
    heartbeats.record_heartbeat("jobs", True, 5.0, "slurm")
    heartbeats.record_heartbeat("jobs", False, 7.0, "slurm", cluster="b")
    beats = {(b.cluster, b.stream): b for b in heartbeats.load_heartbeats()}
    assert set(beats) == {("default", "jobs"), ("b", "jobs")}
    assert beats[("default", "jobs")].ok and not beats[("b", "jobs")].ok and beats[("b", "jobs")].interval == 7.0
    assert (beats[("default", "jobs")].channel, beats[("b", "jobs")].channel) == ("jobs", "jobs.b")

    parsed = parse_nodes(shapes.nodes_doc("25.11", shapes.NODES))
    nodes = {name: dataclasses.replace(node, state="DOWN") for name, node in parsed.items()}
    up = {name: dataclasses.replace(node, state="IDLE") for name, node in nodes.items()}
    assert alerting.evaluate_and_record({}, nodes, 1000.0, "t") and alerting.evaluate_and_record({}, nodes, 1000.0,
                                                                                                  "t", "b")
    raised = set(Alert.objects.filter(raised_at__isnull=False).values_list("cluster", "alert_id"))
    assert ("", "nodes_down") in raised and ("b", "b/nodes_down") in raised  # ids never collide
    resolved = alerting.evaluate_and_record({}, up, 1010.0, "t", "b")  # b recovers, a does not
    assert {p.data["alert_id"] for p in resolved if p.event == "alert_resolved"} >= {"b/nodes_down"}
    assert Alert.objects.get(cluster="", alert_id="nodes_down").resolved_at is None
    assert "nodes_down" in [a["alert_id"] for a in store.load_alerts("")]
    assert all(a["alert_id"].startswith("b/") for a in store.load_alerts("b"))

    # gap: a job the primary knows is still unseen for b; each cluster's last save is its own
    store.save_jobs(None, {}, "slurm")
    assert gap.saved_at("") is not None and gap.saved_at("b") is None
    ended = accounting("101")
    gap.record([gap.job_of(ended)], datetime.now(timezone.utc))  # the primary saw 101
    assert gap.unseen({"101": ended}, "") == [] and [a.job_id for a in gap.unseen({"101": ended}, "b")] == ["101"]
    gap.record([gap.job_of(ended)], datetime.now(timezone.utc), None, "b")
    assert set(ClusterJob.objects.values_list("job_id", "cluster")) == {("101", ""), ("b/101", "b")}
    assert history.needing_accounting(10, 3, "b") == ["101"]
    history.save_accounting(["101"], {"101": ended.as_dict()}, datetime.now(timezone.utc), None, "b")
    assert ClusterJob.objects.get(job_id="b/101").accounting is not None
    assert ClusterJob.objects.get(job_id="101").accounting is None  # the primary's 101 is not b's


@pytest.mark.django_db
def test_the_cluster_option_is_validated():
    with pytest.raises(CommandError, match="--cluster: invalid cluster name 'a.b'"):
        call_command("run_slurm_monitor", "--once", "--mock", "--cluster", "a.b")
    with pytest.raises(CommandError, match="--slurm-conf: '/nonexistent/slurm.conf' is not a file"):
        call_command("run_slurm_monitor", "--once", "--mock", "--slurm-conf", "/nonexistent/slurm.conf")


FAST = ["--jobs-interval", "0.3", "--nodes-interval", "0.3", "--metrics-interval", "1"]
CN03_BACK = shapes.with_changes(shapes.NODES, "name", "cn03", base="IDLE", flags=[], reason="")


@pytest.mark.django_db(transaction=True)
async def test_two_monitor_processes_feed_one_hub_each_on_its_own_channels(make_user, hub_server, fake_slurm,
                                                                           tmp_path, monitor_process):
    """The primary and ``--cluster b`` (each its own fake Slurm, both with job 101 and the same
    nodes) publishing into one real daphne: a subscriber of ``jobs.b`` gets b's events only, one
    of ``jobs`` the primary's only; the owner's copies, notifications and alerts name their cluster."""
    token = (await sync_to_async(make_user)("alice", staff=True))[1]
    (tmp_path / "b-bin").mkdir()
    fake_b = FakeSlurm(tmp_path / "b-bin")
    server = hub_server()
    common = [*FAST, "--sink", "http", "--hub-url", server.url]
    primary = monitor_process(common, {"SLURM_MONITOR_BIN_DIR": fake_slurm.dir}, name="monitor-primary")
    await asyncio.to_thread(primary.wait_for_log, "nodes poll:")  # the service account exists
    second = monitor_process([*common, "--cluster", "b"], {"SLURM_MONITOR_BIN_DIR": fake_b.dir}, name="monitor-b")
    await asyncio.to_thread(second.wait_for_log, "nodes poll:")
    on_primary = await Subscriber.open(server.ws_url, token, ["jobs", "metrics"])
    on_b = await Subscriber.open(server.ws_url, token, ["jobs.b", "metrics.b"])
    shared = await Subscriber.open(server.ws_url, token, ["user:alice", "alerts"])

    fake_b.set_jobs(PENDING)
    await on_b.wait_for(lambda f: f["type"] == "job_submitted")
    fake_b.set_jobs(FAILED)
    note = await shared.wait_for(lambda f: f["type"] == "notification")
    assert (note["data"]["type"], note["data"]["data"]["cluster"]) == ("job_failed", "b")
    fake_slurm.set_jobs(PENDING)
    await on_primary.wait_for(lambda f: f["type"] == "job_submitted")
    fake_b.set_nodes(CN03_BACK)  # b's only down node is back: b's nodes_down resolves, the primary's stays
    resolved = await shared.wait_for(lambda f: f["type"] == "alert_resolved")
    await on_b.wait_for(lambda f: f["type"] == "metrics_update")
    await on_primary.wait_for(lambda f: f["type"] == "metrics_update")
    for process in (primary, second):
        await asyncio.to_thread(process.wait_for_log, "nodes poll:", process.log_text().count("nodes poll:") + 3)
        assert await asyncio.to_thread(process.stop, signal.SIGTERM) == 0
    for client in (on_primary, on_b, shared):
        await client.close()

    assert (resolved["data"]["alert_id"], resolved["data"]["cluster"]) == ("b/nodes_down", "b")
    # (every socket also gets its own user:alice: only the subscribed channels are compared)
    b_frames = on_b.publications(channel="jobs.b") + on_b.publications(channel="metrics.b")
    primary_frames = on_primary.publications(channel="jobs") + on_primary.publications(channel="metrics")
    b_events = [(f["channel"], f["type"], f["data"].get("job_id")) for f in b_frames
                if f["type"] != "metrics_update"]
    assert b_events == [("jobs.b", "job_submitted", "101"), ("jobs.b", "job_state_changed", "101")]
    primary_events = [(f["channel"], f["type"], f["data"].get("job_id")) for f in primary_frames
                      if f["type"] != "metrics_update"]
    assert primary_events == [("jobs", "job_submitted", "101")]
    assert {f["data"]["cluster"] for f in b_frames} == {"b"}
    assert {f["data"]["cluster"] for f in primary_frames} == {"default"}
    assert "metrics_update" in {f["type"] for f in b_frames} & {f["type"] for f in primary_frames}
    copies = [(f["type"], f["data"].get("cluster")) for f in shared.publications(channel="user:alice")
              if f["type"] != "notification"]
    assert copies == [("job_submitted", "b"), ("job_state_changed", "b"), ("job_submitted", "default")]
    keys = await sync_to_async(lambda: set(ClusterJob.objects.values_list("job_id", "cluster")))()
    assert keys == {("101", ""), ("b/101", "b")}


@pytest.mark.django_db(transaction=True)
def test_slurm_conf_reaches_every_command_and_once_saves_only_its_cluster(monitor_process, hub_server,
                                                                          fake_slurm, tmp_path):
    """``--slurm-conf`` is how one host's monitor watches a second cluster: every Slurm command
    it runs sees SLURM_CONF; a ``--once --cluster b`` run saves b's streams only."""
    conf = tmp_path / "slurm-b.conf"
    conf.write_text("ClusterName=b\n")
    for name in ("squeue", "scontrol", "sinfo"):
        script = fake_slurm.dir / name
        head, rest = script.read_text().split("\n", 1)
        script.write_text(f'{head}\necho "$SLURM_CONF" >> "{fake_slurm.dir}/conf.log"\n{rest}')
    server = hub_server()
    monitor = monitor_process(["--once", "--cluster", "b", "--slurm-conf", str(conf), "--hub-url", server.url],
                              {"SLURM_MONITOR_BIN_DIR": fake_slurm.dir}, name="once-b")
    assert monitor.wait() == 0, monitor.log_text()
    seen = (fake_slurm.dir / "conf.log").read_text().splitlines()
    assert seen and set(seen) == {str(conf)}
    assert set(ClusterStream.objects.values_list("name", flat=True)) == {
        "b/jobs", "b/nodes", "b/metrics", "b/alerts", "b/gauges", "b/beat:jobs", "b/beat:nodes", "b/beat:metrics"}
    assert set(ClusterStream.objects.values_list("cluster", flat=True)) == {"b"}
    assert set(ClusterNode.objects.values_list("cluster", flat=True)) == {"b"}


@pytest.mark.django_db
def test_metrics_carry_the_cluster_label():
    from django.test import Client
    from prometheus_client.parser import text_string_to_metric_families

    from hub.ops.metrics import record_poll
    from slurm_monitor.exporter import save_gauges

    save_gauges({"collected_at": 1.0, "nodes": {"IDLE": 3}}, "t")
    save_gauges({"collected_at": 2.0, "nodes": {"IDLE": 5}}, "t", None, "b")
    store.save_alerts([{"alert_id": "b/nodes_down", "severity": "critical"}], "t", cluster="b")
    heartbeats.record_heartbeat("jobs", True, 5.0, "t", cluster="b")
    record_poll("jobs", 0.1, True, "b")
    record_poll("jobs", 0.1, False)
    got: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(Client().get("/metrics").content.decode()):
        for sample in family.samples:
            got.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    assert got["slurm_nodes"] == {(("cluster", "default"), ("state", "IDLE")): 3.0,
                                  (("cluster", "b"), ("state", "IDLE")): 5.0}
    assert got["slurm_alerts_active"][(("cluster", "b"), ("severity", "critical"))] == 1.0
    assert got["slurm_alerts_active"][(("cluster", "default"), ("severity", "critical"))] == 0.0
    assert set(got["hub_slurm_stream_interval_seconds"]) == {(("cluster", "b"), ("stream", "jobs"))}
    assert got["slurm_monitor_poll_errors_total"] == {(("cluster", "b"), ("stream", "jobs")): 0.0,
                                                      (("cluster", "default"), ("stream", "jobs")): 1.0}


@pytest.mark.django_db
def test_stored_reminders_are_asked_per_cluster():
    """Job 101 of cluster b was reminded; the primary's job 101 (same start) was not, and an
    old row without ``cluster`` (written before clusters existed) counts for the primary."""
    from hub.models import Notification as Row
    from slurm_monitor.reminders import TIME_LIMIT_TYPE
    from slurm_monitor.reminders import _sent_keys as sent_keys  # without closing the test's connection

    start = "2026-12-03T10:00:00Z"
    Row.objects.create(username="alice", type=TIME_LIMIT_TYPE, title="t",
                       data={"job_id": "101", "start_time": start, "cluster": "b"})
    keys = [f"101@{start}", f"102@{start}"]
    assert sent_keys(keys, "b") == {f"101@{start}"}
    assert sent_keys(keys, "default") == set()
    Row.objects.create(username="alice", type=TIME_LIMIT_TYPE, title="t", data={"job_id": "102", "start_time": start})
    assert sent_keys(keys, "default") == {f"102@{start}"} and sent_keys(keys, "b") == {f"101@{start}"}


@pytest.mark.django_db
def test_job_watches_and_progress_are_per_cluster(django_user_model):
    from slurm_monitor.interest import changed_progress, save_progress, watched_job_ids
    from slurm_monitor.models import JobProgress, JobWatch

    user = django_user_model.objects.create(username="alice")
    now = datetime.now(timezone.utc)
    JobWatch.objects.create(user=user, cluster="b", job_id="101", expires_at=now + timedelta(minutes=1))
    assert watched_job_ids(now, 100, "b") == ["101"] and watched_job_ids(now, 100, "") == []
    gap.record([gap.job_of(accounting("101"))], now)
    gap.record([gap.job_of(accounting("101"))], now, None, "b")
    save_progress({"101": (1_700_000_900, None)}, None, "b")
    assert list(JobProgress.objects.values_list("job_id", flat=True)) == ["b/101"]
    assert changed_progress({"101": (1_700_000_900, None)}, "b") == {}
    assert changed_progress({"101": (1_700_000_900, None)}, "") == {"101": (1_700_000_900, None)}
