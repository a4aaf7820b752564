"""alerts (raised once, resolved once) and metrics (cluster figures)."""

from __future__ import annotations

import dataclasses

import pytest

from slurm_monitor.alerts import DEFAULT_RULES, evaluate_alerts
from slurm_monitor.metrics import compute_metrics
from tests.slurm_monitor.test_snapshot import EXPECTED_JOBS, EXPECTED_NODES

METRICS = compute_metrics(EXPECTED_JOBS, EXPECTED_NODES)


def test_cluster_metrics():
    m = METRICS
    assert (m.cpus_total, m.cpus_allocated, m.cpu_usage_percent) == (224, 92, 41.1)
    assert (m.memory_total_mb, m.memory_allocated_mb) == (1216000, 115520)
    assert (m.gpus_total, m.gpus_allocated, m.gpu_usage_percent) == (10, 5, 50.0)
    assert (m.jobs_running, m.jobs_pending, m.jobs_total) == (2, 1, 7)  # RUNNING + COMPLETING
    assert (m.nodes_total, m.nodes_idle, m.nodes_down, m.nodes_drained) == (5, 0, 1, 2)
    assert [n.name for n in m.nodes] == ["cn01", "cn02", "cn03", "gpu01", "gpu02"]
    assert m.nodes[3].gpu_usage_percent == 100.0


def test_metrics_of_an_empty_cluster():
    m = compute_metrics({}, {})
    assert (m.cpu_usage_percent, m.memory_usage_percent, m.gpu_usage_percent) == (0.0, 0.0, 0.0)
    assert m.nodes == ()


def with_cpu(percent: float, down: int = 0):
    return dataclasses.replace(METRICS, cpu_usage_percent=percent, nodes_down=down,
                               memory_usage_percent=10.0, gpu_usage_percent=10.0)


def run(sequence):
    """Feed metrics one after another; returns [(step, event, alert_id)]."""
    active, seen = {}, []
    for step, metrics in enumerate(sequence):
        active, pubs = evaluate_alerts(active, metrics, 1700000000.0 + step)
        seen += [(step, p.event, p.data["alert_id"]) for p in pubs]
    return seen, active


@pytest.mark.parametrize("values, expected", [
    ([50, 60, 70], []),
    ([50, 95, 96, 99, 97], [(1, "alert", "cluster_cpu_high")]),
    ([95, 80], [(0, "alert", "cluster_cpu_high"), (1, "alert_resolved", "cluster_cpu_high")]),
    # hysteresis: 88 is under the threshold but above the clear level: still active
    ([95, 88, 91, 87, 85], [(0, "alert", "cluster_cpu_high"), (4, "alert_resolved", "cluster_cpu_high")]),
    ([95, 80, 95], [(0, "alert", "cluster_cpu_high"), (1, "alert_resolved", "cluster_cpu_high"),
                    (2, "alert", "cluster_cpu_high")]),
    ([90, 90.0], []),  # "above 90": 90 itself is not
])
def test_cpu_alert_raised_once_and_resolved_once(values, expected):
    seen, _ = run([with_cpu(v) for v in values])
    assert seen == expected


def test_nodes_down_alert():
    seen, active = run([with_cpu(10, down=0), with_cpu(10, down=1), with_cpu(10, down=2),
                        with_cpu(10, down=1), with_cpu(10, down=0)])
    assert seen == [(1, "alert", "nodes_down"), (4, "alert_resolved", "nodes_down")]
    assert active == {}


def test_alert_payloads():
    active, pubs = evaluate_alerts({}, with_cpu(97.5), 1700000000.0)
    (alert,) = pubs
    assert alert.channel == "alerts"
    assert alert.data["message"] == "Cluster CPU usage is 97.5% (above 90%)"
    assert (alert.data["value"], alert.data["threshold"], alert.data["severity"]) == (97.5, 90.0, "warning")
    _, pubs = evaluate_alerts(active, with_cpu(40.0), 1700000060.0)
    (resolved,) = pubs
    assert resolved.event == "alert_resolved"
    assert resolved.data["raised_at"] == "2023-11-14T22:13:20.000Z"
    assert resolved.data["resolved_at"] == "2023-11-14T22:14:20.000Z"


def test_every_rule_has_a_distinct_id():
    ids = [r.alert_id for r in DEFAULT_RULES]
    assert len(ids) == len(set(ids)) and "cluster_cpu_high" in ids and "nodes_down" in ids
