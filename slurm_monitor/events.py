"""PURE: the payload of every event and notification the monitor sends, one builder each.

A ``Publication`` is (channel, event name, data, user): ``user`` set means the same event also
goes to ``user:<user>`` (a job's owner). A ``Notification`` is handed to the hub's
notification service (persisted per user) or, without it, published as a ``notification``
event whose data is ``notification_payload``. Channels and event names follow PROTOCOL.md's
channel table. Times in payloads are ISO 8601 UTC strings; ``None`` means unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from slurm_monitor.metrics import ClusterMetrics, NodeFigures
from slurm_monitor.reasons import reason_fields
from slurm_monitor.snapshot import Job, Node

JOBS, NODES, METRICS, NOTIFICATIONS, ALERTS = "jobs", "nodes", "metrics", "notifications", "alerts"


@dataclass(frozen=True)
class Publication:
    channel: str
    event: str
    data: dict[str, Any]
    user: str | None = None  # also deliver on user:<user>


@dataclass(frozen=True)
class Notification:
    type: str  # job_completed, job_failed, job_cancelled, job_timeout, node_down, node_drained
    title: str
    message: str
    severity: str  # success, info, warning, error
    data: dict[str, Any] = field(default_factory=dict)
    user: str | None = None  # None: about the cluster, not one user's job


def iso(seconds: float | None) -> str | None:
    """Unix seconds -> "2026-11-22T10:00:05.120Z" (None stays None)."""
    if seconds is None:
        return None
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# --- jobs ---------------------------------------------------------------------------------


def job_fields(job: Job) -> dict[str, Any]:
    """The full job record as sent in job_submitted and served by GET /api/cluster/jobs."""
    return {
        "job_id": job.job_id,
        "name": job.name,
        "user": job.user,
        "partition": job.partition,
        "state": job.state,
        "reason": job.reason,
        "nodes": job.nodes,
        "node_count": job.node_count,
        "cpus": job.cpus,
        "gpus": job.gpus,
        "memory_mb": job.memory_mb,
        "submit_time": iso(job.submit_time),
        "start_time": iso(job.start_time),
        "end_time": iso(job.end_time),
        "time_limit_minutes": job.time_limit_minutes,
        "exit_code": job.exit_code,
        "signal": job.signal,
        "account": job.account,
        "qos": job.qos,
        "working_directory": job.working_directory,
        "stdout_path": job.stdout_path,
        "stderr_path": job.stderr_path,
        "dependency": job.dependency,
        **reason_fields(job.reason),
        **_job_extras(job),
    }


def _job_extras(job: Job) -> dict[str, Any]:
    """Flags next to the base state, and where the job sits in an array (display_id: "10_1")."""
    return {"state_flags": list(job.state_flags), "display_id": job.display_id,
            "array_job_id": job.array_job_id, "array_task_id": job.array_task_id}


def build_job_submitted(job: Job) -> Publication:
    return Publication(JOBS, "job_submitted", job_fields(job), user=job.user)


def build_job_state_changed(previous: Job, job: Job) -> Publication:
    data = {
        "job_id": job.job_id,
        "name": job.name,
        "user": job.user,
        "partition": job.partition,
        "state": job.state,
        "previous_state": previous.state,
        "reason": job.reason,
        **reason_fields(job.reason),
        "nodes": job.nodes,
        "start_time": iso(job.start_time),
        "end_time": iso(job.end_time),
        "exit_code": job.exit_code,
        "signal": job.signal,
        **_job_extras(job),
    }
    return Publication(JOBS, "job_state_changed", data, user=job.user)


def build_job_removed(job: Job) -> Publication:
    """The job left squeue's list (Slurm purged it): ``state`` is the last one seen."""
    data = {"job_id": job.job_id, "name": job.name, "user": job.user,
            "partition": job.partition, "state": job.state, **_job_extras(job)}
    return Publication(JOBS, "job_removed", data, user=job.user)


_FAILED_STATES = {"FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL"}


def build_job_notification(job: Job) -> Notification | None:
    """The notification for a job that just reached a final state, or None (e.g. PREEMPTED)."""
    label = f"Job {job.job_id}" + (f" ({job.name})" if job.name else "")
    data = {"job_id": job.job_id, "name": job.name, "state": job.state,
            "partition": job.partition, "exit_code": job.exit_code, "signal": job.signal}
    if job.state == "COMPLETED":
        return Notification("job_completed", f"{label} completed",
                            f"{label} completed successfully.", "success", data, job.user)
    if job.state in _FAILED_STATES:
        cause = _failure_cause(job)
        return Notification("job_failed", f"{label} failed",
                            f"{label} failed: {cause}.", "error", data, job.user)
    if job.state == "CANCELLED":
        return Notification("job_cancelled", f"{label} cancelled",
                            f"{label} was cancelled.", "warning", data, job.user)
    if job.state in {"TIMEOUT", "DEADLINE"}:
        limit = job.time_limit_minutes
        detail = f" after its {limit} minute limit" if limit else ""
        return Notification("job_timeout", f"{label} timed out",
                            f"{label} timed out{detail}.", "warning", data, job.user)
    return None


def _failure_cause(job: Job) -> str:
    if job.state == "OUT_OF_MEMORY":
        return "out of memory"
    if job.state == "NODE_FAIL":
        return "a node failed"
    if job.state == "BOOT_FAIL":
        return "its node failed to boot"
    if job.signal:
        return f"killed by signal {job.signal}"
    if job.exit_code is not None:
        return f"exit code {job.exit_code}"
    return "unknown cause"


# --- nodes --------------------------------------------------------------------------------


def node_fields(node: Node) -> dict[str, Any]:
    """The full node record as sent in node_added and served by GET /api/cluster/nodes."""
    return {
        "node": node.name,
        "state": node.state,
        "flags": list(node.flags),
        "reason": node.reason,
        "partitions": list(node.partitions),
        "cpus": node.cpus,
        "alloc_cpus": node.alloc_cpus,
        "cpu_load": node.cpu_load,
        "cpu_load_percent": node.cpu_load_percent,
        "cpu_alloc_percent": node.cpu_alloc_percent,
        "real_memory_mb": node.real_memory_mb,
        "alloc_memory_mb": node.alloc_memory_mb,
        "free_memory_mb": node.free_memory_mb,
        "gpus": node.gpus,
        "alloc_gpus": node.alloc_gpus,
    }


def build_node_added(node: Node) -> Publication:
    return Publication(NODES, "node_added", node_fields(node))


def build_node_removed(node: Node) -> Publication:
    return Publication(NODES, "node_removed", {"node": node.name, "state": node.state})


def build_node_state_changed(previous: Node, node: Node) -> Publication:
    data = {"node": node.name, "state": node.state, "previous_state": previous.state,
            "flags": list(node.flags), "reason": node.reason}
    return Publication(NODES, "node_state_changed", data)


def build_node_resource_change(
    node: Node, previous_load_percent: float | None, previous_alloc_percent: float
) -> Publication:
    """Sent when CPU load or allocation moved more than the threshold since the last report."""
    data = {
        "node": node.name,
        "cpus": node.cpus,
        "alloc_cpus": node.alloc_cpus,
        "cpu_alloc_percent": node.cpu_alloc_percent,
        "previous_cpu_alloc_percent": previous_alloc_percent,
        "cpu_load_percent": node.cpu_load_percent,
        "previous_cpu_load_percent": previous_load_percent,
    }
    return Publication(NODES, "node_resource_change", data)


def build_node_notification(previous: Node, node: Node) -> Notification | None:
    """node_down when a node goes down (or fails), node_drained when it starts draining."""
    data = {"node": node.name, "state": node.state, "previous_state": previous.state,
            "reason": node.reason}
    why = f": {node.reason}" if node.reason else ""
    if node.state in {"DOWN", "FAIL", "FAILING"} and previous.state not in {"DOWN", "FAIL", "FAILING"}:
        return Notification("node_down", f"Node {node.name} is down",
                            f"Node {node.name} is {node.state.lower()}{why}.", "error", data)
    if node.state in {"DRAINED", "DRAINING"} and previous.state not in {"DRAINED", "DRAINING"}:
        return Notification("node_drained", f"Node {node.name} drained",
                            f"Node {node.name} is {node.state.lower()}{why}.", "warning", data)
    return None


# --- metrics, notifications, alerts --------------------------------------------------------


def _node_figures_fields(figures: NodeFigures) -> dict[str, Any]:
    return {
        "node": figures.name,
        "state": figures.state,
        "cpus": figures.cpus,
        "alloc_cpus": figures.alloc_cpus,
        "cpu_usage_percent": figures.cpu_usage_percent,
        "cpu_load_percent": figures.cpu_load_percent,
        "memory_mb": figures.memory_mb,
        "alloc_memory_mb": figures.alloc_memory_mb,
        "memory_usage_percent": figures.memory_usage_percent,
        "gpus": figures.gpus,
        "alloc_gpus": figures.alloc_gpus,
        "gpu_usage_percent": figures.gpu_usage_percent,
    }


def metrics_fields(metrics: ClusterMetrics, collected_at: float) -> dict[str, Any]:
    return {
        "cpu": {"total": metrics.cpus_total, "allocated": metrics.cpus_allocated,
                "usage_percent": metrics.cpu_usage_percent},
        "memory": {"total_mb": metrics.memory_total_mb, "allocated_mb": metrics.memory_allocated_mb,
                   "usage_percent": metrics.memory_usage_percent},
        "gpu": {"total": metrics.gpus_total, "allocated": metrics.gpus_allocated,
                "usage_percent": metrics.gpu_usage_percent},
        "jobs": {"running": metrics.jobs_running, "pending": metrics.jobs_pending,
                 "total": metrics.jobs_total},
        "nodes": {"idle": metrics.nodes_idle, "down": metrics.nodes_down,
                  "drained": metrics.nodes_drained, "total": metrics.nodes_total},
        "per_node": [_node_figures_fields(f) for f in metrics.nodes],
        "collected_at": iso(collected_at),
    }


def build_metrics_update(metrics: ClusterMetrics, collected_at: float) -> Publication:
    return Publication(METRICS, "metrics_update", metrics_fields(metrics, collected_at))


def notification_payload(notification: Notification, now: float) -> dict[str, Any]:
    """The ``notification`` event's data when the hub's notification service is absent."""
    return {
        "type": notification.type,
        "title": notification.title,
        "message": notification.message,
        "severity": notification.severity,
        "user": notification.user,
        "data": dict(notification.data),
        "timestamp": iso(now),
    }


def build_alert(alert_id: str, severity: str, message: str, value: float, threshold: float,
                raised_at: float) -> Publication:
    data = {"alert_id": alert_id, "severity": severity, "message": message, "value": value,
            "threshold": threshold, "raised_at": iso(raised_at)}
    return Publication(ALERTS, "alert", data)


def build_alert_resolved(alert_id: str, message: str, value: float, threshold: float,
                         raised_at: float, resolved_at: float) -> Publication:
    data = {"alert_id": alert_id, "message": message, "value": value, "threshold": threshold,
            "raised_at": iso(raised_at), "resolved_at": iso(resolved_at)}
    return Publication(ALERTS, "alert_resolved", data)
