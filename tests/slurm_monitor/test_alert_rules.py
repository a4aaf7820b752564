"""Alerts as data: the pure rule engine (scope, minimum count, duration, hysteresis), the
stored lifecycle the monitor writes, and the admin: a rule created there raises, is
acknowledged and silenced (audited), and resolves."""

from __future__ import annotations

import dataclasses
import re

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import Client

from slurm_monitor import alerting, store_read
from slurm_monitor.alerts import AlertState, RuleSpec, evaluate_rules, observe, step
from slurm_monitor.collector import SlurmCollector
from slurm_monitor.models import Alert, AlertAudit, AlertRule
from slurm_monitor.monitor import Monitor
from slurm_monitor.snapshot import Node
from tests.slurm_monitor import shapes
from tests.slurm_monitor.test_monitor import RecordingSink, ScriptedSlurm, squeue
from tests.slurm_monitor.test_snapshot import EXPECTED_JOBS, EXPECTED_NODES

T0 = 1_700_000_000.0


@pytest.fixture(autouse=True)
async def _close_worker_thread_connections():
    yield
    from django.db import connections

    await sync_to_async(connections.close_all)()


def node(name: str, state: str = "IDLE", cpus: int = 32, alloc: int = 0, partitions=("cpu",)) -> Node:
    return Node(name=name, state=state, flags=(), reason=None, partitions=tuple(partitions), cpus=cpus,
                alloc_cpus=alloc, cpu_load=None, real_memory_mb=1000, alloc_memory_mb=0, free_memory_mb=None,
                gpus=0, alloc_gpus=0)


def spec(**kw) -> RuleSpec:
    base = dict(name="r", metric="cpu_alloc_percent", scope="cluster", target="", threshold=90.0, clear_at=80.0,
                min_count=0, duration_seconds=0.0, severity="warning")
    return RuleSpec(**{**base, **kw})


# --- the pure engine -------------------------------------------------------------------------------

def test_a_small_cluster_at_100_percent_is_not_a_full_cluster():
    tiny = {"n1": node("n1", "ALLOCATED", cpus=2, alloc=2)}
    rule = spec(min_count=64)
    assert observe(rule, {}, tiny)[0].value == 100.0
    assert evaluate_rules([rule], {}, tiny, {}, T0) == []
    big = {f"n{i}": node(f"n{i}", "ALLOCATED", cpus=32, alloc=32) for i in range(4)}  # 128 CPUs
    assert [t.kind for t in evaluate_rules([rule], {}, big, {}, T0)] == ["raise"]


def test_duration_pending_then_raised_then_resolved_with_hysteresis():
    rule = spec(duration_seconds=300)
    full = {"n1": node("n1", "ALLOCATED", cpus=10, alloc=10)}
    at85 = {"n1": node("n1", "MIXED", cpus=100, alloc=85)}
    at70 = {"n1": node("n1", "MIXED", cpus=100, alloc=70)}
    obs = lambda nodes: observe(rule, {}, nodes)[0]  # noqa: E731
    assert step(rule, obs(full), None, T0).kind == "pending"
    pending = AlertState("r", "", T0, None)
    assert step(rule, obs(full), pending, T0 + 299) is None
    assert step(rule, obs(at85), pending, T0 + 100).kind == "drop"  # stopped firing before the duration
    assert step(rule, obs(full), pending, T0 + 300).kind == "raise"
    raised = AlertState("r", "", T0, T0 + 300)
    assert step(rule, obs(at85), raised, T0 + 400) is None  # under the threshold, above clear_at
    resolved = step(rule, obs(at70), raised, T0 + 500)
    assert resolved.kind == "resolve" and "back to 70%" in resolved.message


def test_scopes_partition_and_node():
    nodes = {"a1": node("a1", "DOWN", partitions=("a",)), "a2": node("a2", "DOWN", partitions=("a",)),
             "a3": node("a3", partitions=("a",)), "b1": node("b1", "DOWN", partitions=("b",)),
             "b2": node("b2", partitions=("b",))}
    per_partition = spec(name="p", metric="nodes_down_percent", scope="partition", threshold=20.0, min_count=2)
    got = {(t.kind, t.target) for t in evaluate_rules([per_partition], {}, nodes, {}, T0)}
    assert got == {("raise", "a")}  # b: 50 % but only one node down
    only_b = dataclasses.replace(per_partition, target="b", min_count=1)
    assert [(t.target, t.value) for t in evaluate_rules([only_b], {}, nodes, {}, T0)] == [("b", 50.0)]
    per_node = spec(name="n", metric="nodes_down_percent", scope="node", threshold=0.0, clear_at=None)
    assert sorted(t.target for t in evaluate_rules([per_node], {}, nodes, {}, T0)) == ["a1", "a2", "b1"]


def test_an_alert_no_longer_evaluated_is_resolved():
    states = {("gone", ""): AlertState("gone", "", T0, T0), ("half", "x"): AlertState("half", "x", T0, None)}
    got = [(t.kind, t.rule) for t in evaluate_rules([], {}, {}, states, T0 + 1)]
    assert got == [("resolve", "gone"), ("drop", "half")]


# --- stored lifecycle ------------------------------------------------------------------------------

@pytest.mark.django_db
def test_default_rules_on_any_cluster_size():
    alerting.evaluate_and_record(EXPECTED_JOBS, EXPECTED_NODES, T0)
    assert AlertRule.objects.filter(name="nodes_down", enabled=True).exists()
    # EXPECTED_NODES: 1 of 5 nodes down -> nodes_down raised at once; 3 of 5 down or drained ->
    # nodes_unavailable pending for its 10 minutes; the CPU rule needs 64+ allocated CPUs (92 of 224 is 41 %)
    assert {(a.alert_id, a.status) for a in Alert.objects.all()} == {
        ("nodes_down", "active"), ("nodes_unavailable", "pending")}
    many = {f"cn{i:05d}": node(f"cn{i:05d}", "DOWN" if i < 100 else "IDLE") for i in range(10_000)}
    Alert.objects.all().delete()
    alerting.evaluate_and_record({}, many, T0)  # 1 % of 10,000 nodes down: not "2 % of the cluster"
    assert not Alert.objects.filter(rule_name="nodes_down").exists()


@pytest.mark.django_db
def test_lifecycle_is_stored_and_audited():
    AlertRule.objects.create(name="cpu_busy", metric="cpu_alloc_percent", threshold=30.0, clear_at=20.0,
                             severity="warning", duration_seconds=60)
    # a site with rules of its own gets no defaults added
    assert alerting.evaluate_and_record(EXPECTED_JOBS, EXPECTED_NODES, T0) == []
    assert list(AlertRule.objects.values_list("name", flat=True)) == ["cpu_busy"]
    busy = Alert.objects.get(rule_name="cpu_busy")
    assert busy.status == "pending" and busy.value == 41.1
    assert alerting.evaluate_and_record(EXPECTED_JOBS, EXPECTED_NODES, T0 + 30) == []
    published = alerting.evaluate_and_record(EXPECTED_JOBS, EXPECTED_NODES, T0 + 60)
    assert [(p.event, p.data["alert_id"], p.data["severity"]) for p in published] == [("alert", "cpu_busy", "warning")]
    busy.refresh_from_db()
    assert busy.status == "active"
    assert [a["alert_id"] for a in store_read.list_alerts()["results"]] == ["cpu_busy"]

    assert alerting.acknowledge(busy, "boss") and not alerting.acknowledge(busy, "boss")
    busy.refresh_from_db()
    assert busy.status == "acknowledged" and busy.acknowledged_by == "boss"
    idle = {name: dataclasses.replace(n, alloc_cpus=0) for name, n in EXPECTED_NODES.items()}
    published = alerting.evaluate_and_record(EXPECTED_JOBS, idle, T0 + 120)
    assert [(p.event, p.data["alert_id"]) for p in published] == [("alert_resolved", "cpu_busy")]
    busy.refresh_from_db()
    assert busy.status == "resolved"
    assert list(busy.audit.values_list("action", "actor")) == [
        ("raised", "monitor"), ("acknowledged", "boss"), ("resolved", "monitor")]


@pytest.mark.django_db
def test_a_silenced_alert_is_recorded_but_not_pushed():
    AlertRule.objects.create(name="cpu_busy", metric="cpu_alloc_percent", threshold=30.0, severity="warning")
    alerting.evaluate_and_record(EXPECTED_JOBS, EXPECTED_NODES, T0)
    busy = Alert.objects.get(rule_name="cpu_busy")
    assert alerting.silence(busy, "boss", 3600)
    idle = {name: dataclasses.replace(n, alloc_cpus=0) for name, n in EXPECTED_NODES.items()}
    import time

    assert alerting.evaluate_and_record(EXPECTED_JOBS, idle, time.time()) == []  # resolved, silently
    busy.refresh_from_db()
    assert busy.status == "resolved"
    assert list(busy.audit.values_list("action", flat=True)) == ["raised", "silenced", "resolved"]


# --- the monitor and the admin -----------------------------------------------------------------------

class DataSink(RecordingSink):
    """Keeps each publication's data too."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[tuple[str, str, dict]] = []

    async def publish(self, channel, event, data):
        self.published.append((channel, event, data))
        return await super().publish(channel, event, data)


def admin_client(username="boss", superuser=True) -> Client:
    client = Client()
    User = get_user_model()
    user = (User.objects.create_superuser(username, password="x") if superuser
            else User.objects.create_user(username, password="x", is_staff=True))
    client.force_login(user)
    return client


@pytest.mark.django_db(transaction=True)
async def test_a_rule_created_in_admin_raises_is_acknowledged_and_resolves():
    client = await sync_to_async(admin_client)()
    created = await sync_to_async(client.post)("/admin/slurm_monitor/alertrule/add/", {
        "name": "gpu_partition_busy", "description": "", "enabled": "on", "metric": "gpu_alloc_percent",
        "scope": "partition", "target": "gpu", "threshold": "40", "clear_at": "", "min_count": "1",
        "duration_seconds": "0", "severity": "critical"})
    assert created.status_code == 302, created.content.decode()[:2000]

    sink = DataSink()
    runner = ScriptedSlurm("24.05", [squeue("24.05", shapes.JOBS)])
    monitor = Monitor(SlurmCollector(runner=runner), sink, source="slurm")
    await monitor.poll_jobs()
    await monitor.poll_nodes()
    raised = [e for e in sink.published if e[0] == "alerts" and e[2].get("alert_id") == "gpu_partition_busy:gpu"]
    assert [(c, ev, d["severity"]) for c, ev, d in raised] == [("alerts", "alert", "critical")]

    alert = await sync_to_async(Alert.objects.get)(alert_id="gpu_partition_busy:gpu")
    listing = (await sync_to_async(client.get)("/admin/slurm_monitor/alert/")).content.decode()
    assert "gpu_partition_busy:gpu" in listing and "active" in listing
    done = await sync_to_async(client.post)("/admin/slurm_monitor/alert/", {
        "action": "acknowledge", "_selected_action": [alert.pk]}, follow=True)
    assert "1 alert(s) acknowledged" in done.content.decode()
    page = (await sync_to_async(client.get)(f"/admin/slurm_monitor/alert/{alert.pk}/change/")).content.decode()
    assert re.search(r"acknowledged.*boss", page, re.S) and 'name="severity"' not in page

    await sync_to_async(AlertRule.objects.filter(name="gpu_partition_busy").update)(threshold=99.0)
    await monitor.poll_nodes()
    resolved = [e for e in sink.published if e[1] == "alert_resolved" and e[2]["alert_id"] == "gpu_partition_busy:gpu"]
    assert len(resolved) == 1
    actions = await sync_to_async(lambda: list(AlertAudit.objects.filter(alert=alert).values_list("action", "actor")))()
    assert actions == [("raised", "monitor"), ("acknowledged", "boss"), ("resolved", "monitor")]


@pytest.mark.django_db
def test_acknowledging_needs_the_change_permission():
    AlertRule.objects.create(name="cpu_busy", metric="cpu_alloc_percent", threshold=30.0)
    alerting.evaluate_and_record(EXPECTED_JOBS, EXPECTED_NODES, T0)
    alert = Alert.objects.get(rule_name="cpu_busy")
    client = admin_client("viewer", superuser=False)
    from django.contrib.auth.models import Permission

    viewer = get_user_model().objects.get(username="viewer")
    viewer.user_permissions.add(Permission.objects.get(codename="view_alert"))
    client.post("/admin/slurm_monitor/alert/", {"action": "acknowledge", "_selected_action": [alert.pk]})
    alert.refresh_from_db()
    assert alert.acknowledged_at is None and not AlertAudit.objects.filter(action="acknowledged").exists()
