"""events: one builder per event type, each with its exact keys, channel and event name."""

from __future__ import annotations

import dataclasses
import json

import pytest

from slurm_monitor import events as e
from slurm_monitor.metrics import compute_metrics
from tests.slurm_monitor.test_snapshot import EXPECTED_JOBS, EXPECTED_NODES

JOB = EXPECTED_JOBS["103"]
NODE = EXPECTED_NODES["cn01"]
DRAINED = EXPECTED_NODES["cn02"]
DOWN = EXPECTED_NODES["cn03"]
METRICS = compute_metrics(EXPECTED_JOBS, EXPECTED_NODES)

# Issue 13: every job event carries the flags next to the base state and its array place.
JOB_EXTRA_KEYS = {"state_flags", "display_id", "array_job_id", "array_task_id"}
# Issue 14: the reason in words; the fields the job page shows where Slurm reports them.
REASON_KEYS = {"reason_text", "reason_hint"}
JOB_KEYS = {"job_id", "name", "user", "partition", "state", "reason", "nodes", "node_count", "cpus",
            "gpus", "memory_mb", "submit_time", "start_time", "end_time", "time_limit_minutes",
            "exit_code", "signal", "account", "qos", "working_directory", "stdout_path", "stderr_path",
            "dependency"} | JOB_EXTRA_KEYS | REASON_KEYS
NODE_KEYS = {"node", "state", "flags", "reason", "partitions", "cpus", "alloc_cpus", "cpu_load",
             "cpu_load_percent", "cpu_alloc_percent", "real_memory_mb", "alloc_memory_mb",
             "free_memory_mb", "gpus", "alloc_gpus"}
PER_NODE_KEYS = {"node", "state", "cpus", "alloc_cpus", "cpu_usage_percent", "cpu_load_percent",
                 "memory_mb", "alloc_memory_mb", "memory_usage_percent", "gpus", "alloc_gpus",
                 "gpu_usage_percent"}

CASES = [
    ("job_submitted", e.build_job_submitted(JOB), "jobs", "carol", JOB_KEYS),
    ("job_state_changed",
     e.build_job_state_changed(dataclasses.replace(JOB, state="RUNNING"), JOB), "jobs", "carol",
     {"job_id", "name", "user", "partition", "state", "previous_state", "reason", "nodes",
      "start_time", "end_time", "exit_code", "signal"} | JOB_EXTRA_KEYS | REASON_KEYS),
    ("job_removed", e.build_job_removed(JOB), "jobs", "carol",
     {"job_id", "name", "user", "partition", "state"} | JOB_EXTRA_KEYS),
    ("node_added", e.build_node_added(NODE), "nodes", None, NODE_KEYS),
    ("node_removed", e.build_node_removed(NODE), "nodes", None, {"node", "state"}),
    ("node_state_changed", e.build_node_state_changed(NODE, DRAINED), "nodes", None,
     {"node", "state", "previous_state", "flags", "reason"}),
    ("node_resource_change", e.build_node_resource_change(NODE, 1.0, 2.0), "nodes", None,
     {"node", "cpus", "alloc_cpus", "cpu_alloc_percent", "previous_cpu_alloc_percent",
      "cpu_load_percent", "previous_cpu_load_percent"}),
    ("metrics_update", e.build_metrics_update(METRICS, 1700000000.0), "metrics", None,
     {"cpu", "memory", "gpu", "jobs", "nodes", "per_node", "collected_at"}),
    ("alert", e.build_alert("cluster_cpu_high", "warning", "hot", 95.0, 90.0, 1700000000.0),
     "alerts", None, {"alert_id", "severity", "message", "value", "threshold", "raised_at"}),
    ("alert_resolved",
     e.build_alert_resolved("cluster_cpu_high", "ok", 80.0, 90.0, 1700000000.0, 1700000060.0),
     "alerts", None, {"alert_id", "message", "value", "threshold", "raised_at", "resolved_at"}),
]


@pytest.mark.parametrize("event, publication, channel, user, keys", CASES, ids=[c[0] for c in CASES])
def test_event_builders_exact_keys(event, publication, channel, user, keys):
    assert publication.event == event
    assert publication.channel == channel
    assert publication.user == user
    assert set(publication.data) == keys
    json.dumps(publication.data)  # wire-safe


def test_metrics_update_nested_keys():
    data = e.build_metrics_update(METRICS, 1700000000.0).data
    assert set(data["cpu"]) == {"total", "allocated", "usage_percent"}
    assert set(data["memory"]) == {"total_mb", "allocated_mb", "usage_percent"}
    assert set(data["gpu"]) == {"total", "allocated", "usage_percent"}
    assert set(data["jobs"]) == {"running", "pending", "total"}
    assert set(data["nodes"]) == {"idle", "down", "drained", "total"}
    assert [set(n) for n in data["per_node"]] == [PER_NODE_KEYS] * len(EXPECTED_NODES)
    assert data["collected_at"] == "2023-11-14T22:13:20.000Z"


NOTIFICATION_KEYS = {"job_id", "name", "state", "partition", "exit_code", "signal"}


@pytest.mark.parametrize("job_id, state, type_, severity, text", [
    ("107", "COMPLETED", "job_completed", "success", "completed successfully"),
    ("103", "FAILED", "job_failed", "error", "exit code 3"),
    ("104", "CANCELLED", "job_cancelled", "warning", "was cancelled"),
    ("105", "TIMEOUT", "job_timeout", "warning", "10 minute limit"),
    ("103", "OUT_OF_MEMORY", "job_failed", "error", "out of memory"),
    ("103", "NODE_FAIL", "job_failed", "error", "a node failed"),
])
def test_job_notifications(job_id, state, type_, severity, text):
    job = dataclasses.replace(EXPECTED_JOBS[job_id], state=state)
    note = e.build_job_notification(job)
    assert (note.type, note.severity, note.user) == (type_, severity, job.user)
    assert text in note.message and job.job_id in note.title
    assert set(note.data) == NOTIFICATION_KEYS


def test_failed_job_notification_carries_the_true_exit_code():
    note = e.build_job_notification(EXPECTED_JOBS["103"])
    assert note.data["exit_code"] == 3 and note.data["signal"] is None


def test_killed_job_names_the_signal():
    job = dataclasses.replace(EXPECTED_JOBS["103"], exit_code=0, signal=9)
    assert "signal 9" in e.build_job_notification(job).message


@pytest.mark.parametrize("state", ["PENDING", "RUNNING", "PREEMPTED", "COMPLETING"])
def test_no_notification_for_other_states(state):
    assert e.build_job_notification(dataclasses.replace(JOB, state=state)) is None


@pytest.mark.parametrize("before, after, expected", [
    (NODE, DOWN, ("node_down", "error")),
    (NODE, DRAINED, ("node_drained", "warning")),
    (NODE, EXPECTED_NODES["gpu02"], ("node_drained", "warning")),
    (EXPECTED_NODES["gpu02"], DRAINED, None),  # DRAINING -> DRAINED: already told
    (DRAINED, DOWN, ("node_down", "error")),
    (DOWN, NODE, None),
    (DRAINED, NODE, None),
])
def test_node_notifications(before, after, expected):
    note = e.build_node_notification(before, after)
    if expected is None:
        assert note is None
    else:
        assert (note.type, note.severity, note.user) == (*expected, None)
        assert set(note.data) == {"node", "state", "previous_state", "reason"}


def test_notification_payload_keys():
    note = e.build_job_notification(JOB)
    payload = e.notification_payload(note, 1700000000.0)
    assert set(payload) == {"type", "title", "message", "severity", "user", "data", "timestamp"}
    assert payload["user"] == "carol" and payload["timestamp"] == "2023-11-14T22:13:20.000Z"


def test_job_events_carry_flags_and_the_array_place():
    task = dataclasses.replace(JOB, state="CANCELLED", state_flags=("COMPLETING",), array_job_id="10",
                               array_task_id=1)
    for publication in (e.build_job_submitted(task), e.build_job_removed(task),
                        e.build_job_state_changed(JOB, task)):
        assert publication.data["state"] == "CANCELLED"
        assert publication.data["state_flags"] == ["COMPLETING"]
        assert (publication.data["display_id"], publication.data["array_job_id"],
                publication.data["array_task_id"]) == ("10_1", "10", 1)
    plain = e.build_job_submitted(JOB).data
    assert (plain["display_id"], plain["array_job_id"], plain["array_task_id"]) == ("103", None, None)


def test_iso():
    assert e.iso(None) is None
    assert e.iso(1700000000.1234) == "2023-11-14T22:13:20.123Z"
