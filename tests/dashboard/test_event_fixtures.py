"""The dashboard reads the event contract exactly: one JSON fixture per event builder of
``slurm_monitor/events.py`` (and the notification service's payload), generated here from the
server's own builders and consumed by the JS model tests (tests/js/*.test.mjs). This test
fails when a fixture is stale; ``UPDATE_EVENT_FIXTURES=1`` rewrites them.

Each fixture is the frame a page receives: ``{"type", "channel", "offset", "timestamp",
"data"}`` (docs/protocol.md section 3).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from types import SimpleNamespace
from datetime import datetime, timezone

from slurm_monitor import events, progress
from slurm_monitor.metrics import compute_metrics
from slurm_monitor.snapshot import Job, Node

FIXTURES = Path(__file__).resolve().parents[1] / "js" / "fixtures" / "events"
T0 = 1763805600  # 2026-11-22T10:00:00Z

PENDING = Job(job_id="1001", name="train", user="alice", partition="gpu", state="PENDING", reason="Priority",
              nodes="", node_count=1, cpus=8, gpus=2, memory_mb=16000, submit_time=T0, start_time=None,
              end_time=None, time_limit_minutes=60, exit_code=None, signal=None)
RUNNING = dataclasses.replace(PENDING, state="RUNNING", reason=None, nodes="gpu[01-02]", node_count=2,
                              start_time=T0 + 60)
DONE = dataclasses.replace(RUNNING, state="COMPLETED", end_time=T0 + 1860, exit_code=0)
TASK = dataclasses.replace(RUNNING, job_id="1011", array_job_id="1010", array_task_id=1, name="sweep")
NODE = Node(name="gpu01", state="MIXED", flags=(), reason=None, partitions=("gpu", "all"), cpus=64,
            alloc_cpus=16, cpu_load=12.5, real_memory_mb=256000, alloc_memory_mb=64000,
            free_memory_mb=100000, gpus=4, alloc_gpus=2)
BUSY = dataclasses.replace(NODE, alloc_cpus=48, cpu_load=40.0)
DRAINED = dataclasses.replace(NODE, state="DRAINED", reason="maintenance", alloc_cpus=0)


def frame(publication: events.Publication, offset: int) -> dict:
    return {"type": publication.event, "channel": publication.channel, "offset": offset,
            "timestamp": events.iso(T0 + offset), "data": publication.data}


def notification_frame(offset: int) -> dict:
    """hub/notify/notifications.py to_dict: what the notification service pushes (and REST lists)."""
    from hub.notify.notifications import to_dict

    row = SimpleNamespace(id=42, username="alice", type="job_completed", title="Job 1001 (train) completed",
                          message="Job 1001 (train) completed successfully.", severity="success",
                          data={"job_id": "1001", "name": "train", "state": "COMPLETED", "partition": "gpu",
                                "exit_code": 0, "signal": None},
                          read=False, created=datetime.fromtimestamp(T0 + offset, tz=timezone.utc))
    return {"type": "notification", "channel": "user:alice", "offset": offset,
            "timestamp": events.iso(T0 + offset), "data": to_dict(row)}


def fixtures() -> dict[str, dict]:
    metrics = compute_metrics({"1001": RUNNING, "1011": TASK}, {"gpu01": NODE})
    return {
        "job_submitted": frame(events.build_job_submitted(PENDING), 1),
        "job_state_changed": frame(events.build_job_state_changed(PENDING, RUNNING), 2),
        "job_state_changed.completed": frame(events.build_job_state_changed(RUNNING, DONE), 3),
        "job_submitted.array_task": frame(events.build_job_submitted(TASK), 4),
        "job_removed": frame(events.build_job_removed(DONE), 5),
        "node_added": frame(events.build_node_added(NODE), 1),
        "node_state_changed": frame(events.build_node_state_changed(NODE, DRAINED), 2),
        "node_resource_change": frame(events.build_node_resource_change(BUSY, 19.5, 25.0), 3),
        "node_removed": frame(events.build_node_removed(DRAINED), 4),
        "metrics_update": frame(events.build_metrics_update(metrics, T0 + 5), 1),
        "alert": frame(events.build_alert("cluster_cpu_high", "warning", "CPU 95%", 95.0, 90.0, T0), 1),
        "alert_resolved": frame(events.build_alert_resolved("cluster_cpu_high", "CPU back to 50%", 50.0, 90.0,
                                                            T0, T0 + 600), 2),
        "job_progress": frame(progress.build_job_progress(
            RUNNING, None, {"cpu": {"used_seconds": 3600, "available_seconds": 7200, "percent": 50.0},
                            "memory": {"max_rss_mb": 4000, "requested_mb": 16000, "percent": 25.0},
                            "gpu": {"requested": 2, "percent": None}, "measured_at": events.iso(T0 + 900)}), 6),
        "notification": notification_frame(1),
        "notification.monitor_only": {
            "type": "notification", "channel": "user:alice", "offset": 2, "timestamp": events.iso(T0 + 2),
            "data": events.notification_payload(events.build_job_notification(DONE), T0 + 2)},
    }


def test_every_builder_has_a_fixture():
    builders = {name[len("build_"):] for module in (events, progress) for name in dir(module)
                if name.startswith("build_")}
    covered = {name.split(".")[0] for name in fixtures()}
    # build_job_notification / build_node_notification make Notification objects, sent as
    # the `notification` event (both its shapes are fixtures).
    assert builders - {"job_notification", "node_notification", "low_usage_notification"} <= covered, \
        builders - covered


def test_fixtures_are_current():
    stale = []
    for name, wanted in fixtures().items():
        path = FIXTURES / f"{name}.json"
        text = json.dumps(wanted, indent=2, sort_keys=True) + "\n"
        if os.environ.get("UPDATE_EVENT_FIXTURES"):
            FIXTURES.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        elif not path.exists() or path.read_text() != text:
            stale.append(name)
    assert not stale, f"stale event fixtures {stale}: run UPDATE_EVENT_FIXTURES=1 pytest {__file__}"
