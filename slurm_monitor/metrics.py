"""PURE: cluster figures from the latest job and node snapshots.

Usage figures are allocations (what Slurm has handed out), the way Slurm itself reports a
cluster's usage: CPU = allocated / total CPUs, memory = allocated / configured memory,
GPU = allocated / total GPUs. Nodes that are down (or drained) still count in the totals,
so a cluster losing nodes shows it. ``cpu_load_percent`` per node is the OS load average
over the node's CPUs, which the usage figures do not include.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Mapping

from slurm_monitor.snapshot import Job, Node, percent

ACTIVE_JOB_STATES: frozenset[str] = frozenset({"RUNNING", "COMPLETING", "SUSPENDED", "CONFIGURING"})


@dataclass(frozen=True)
class NodeFigures:
    name: str
    state: str
    cpus: int
    alloc_cpus: int
    cpu_usage_percent: float
    cpu_load_percent: float | None
    memory_mb: int
    alloc_memory_mb: int
    memory_usage_percent: float
    gpus: int
    alloc_gpus: int
    gpu_usage_percent: float


@dataclass(frozen=True)
class ClusterMetrics:
    cpus_total: int
    cpus_allocated: int
    cpu_usage_percent: float
    memory_total_mb: int
    memory_allocated_mb: int
    memory_usage_percent: float
    gpus_total: int
    gpus_allocated: int
    gpu_usage_percent: float
    jobs_running: int
    jobs_pending: int
    jobs_total: int
    nodes_total: int
    nodes_idle: int
    nodes_down: int
    nodes_drained: int
    nodes: tuple[NodeFigures, ...]


def node_figures(node: Node) -> NodeFigures:
    return NodeFigures(
        name=node.name,
        state=node.state,
        cpus=node.cpus,
        alloc_cpus=node.alloc_cpus,
        cpu_usage_percent=node.cpu_alloc_percent,
        cpu_load_percent=node.cpu_load_percent,
        memory_mb=node.real_memory_mb,
        alloc_memory_mb=node.alloc_memory_mb,
        memory_usage_percent=node.memory_alloc_percent,
        gpus=node.gpus,
        alloc_gpus=node.alloc_gpus,
        gpu_usage_percent=node.gpu_alloc_percent,
    )


@dataclass(frozen=True)
class JobCounts:
    """Everything the metrics, gauges and alert rules read from a jobs snapshot, counted in one
    pass (``job_counts``): a walk over 100,000 jobs costs ~0.1 s, so a monitor counts each
    snapshot once (``figures.FigureCache``) rather than once per metric, gauge and rule."""

    total: int
    running: int  # in ACTIVE_JOB_STATES
    pending: int
    by_state_partition: Mapping[tuple[str, str], int]
    pending_reasons: Mapping[str, int]  # by reason_code
    pending_by_partition: Mapping[str, int]  # a pending job's partition field as squeue lists it
    running_by_user: Mapping[str, int]


def job_counts(jobs: Mapping[str, Job]) -> JobCounts:
    by_state_partition: dict[tuple[str, str], int] = {}
    reasons: dict[str, int] = {}
    pending_by_partition: dict[str, int] = {}
    running_by_user: dict[str, int] = {}
    running = pending = 0
    for job in jobs.values():
        state = job.state
        key = (state, job.partition)
        by_state_partition[key] = by_state_partition.get(key, 0) + 1
        if state == "PENDING":
            pending += 1
            code = reason_code(job.reason)
            reasons[code] = reasons.get(code, 0) + 1
            pending_by_partition[job.partition] = pending_by_partition.get(job.partition, 0) + 1
        elif state in ACTIVE_JOB_STATES:
            running += 1
            running_by_user[job.user] = running_by_user.get(job.user, 0) + 1
    return JobCounts(len(jobs), running, pending, by_state_partition, reasons, pending_by_partition,
                     running_by_user)


def compute_metrics(jobs: Mapping[str, Job], nodes: Mapping[str, Node], counts: JobCounts | None = None,
                    figures: Callable[[Node], NodeFigures] = node_figures) -> ClusterMetrics:
    """Totals over ``nodes`` and counts over ``jobs``; ``jobs_total`` counts every job squeue
    still lists (finished ones stay listed for Slurm's MinJobAge). ``counts``: ``job_counts(jobs)``
    if the caller has it already; ``figures``: ``node_figures`` or a cache of it."""
    counts = counts or job_counts(jobs)
    ordered = [nodes[name] for name in sorted(nodes)]
    cpus = sum(n.cpus for n in ordered)
    alloc_cpus = sum(n.alloc_cpus for n in ordered)
    memory = sum(n.real_memory_mb for n in ordered)
    alloc_memory = sum(min(n.alloc_memory_mb, n.real_memory_mb) for n in ordered)
    gpus = sum(n.gpus for n in ordered)
    alloc_gpus = sum(n.alloc_gpus for n in ordered)
    return ClusterMetrics(
        cpus_total=cpus,
        cpus_allocated=alloc_cpus,
        cpu_usage_percent=percent(alloc_cpus, cpus),
        memory_total_mb=memory,
        memory_allocated_mb=alloc_memory,
        memory_usage_percent=percent(alloc_memory, memory),
        gpus_total=gpus,
        gpus_allocated=alloc_gpus,
        gpu_usage_percent=percent(alloc_gpus, gpus),
        jobs_running=counts.running,
        jobs_pending=counts.pending,
        jobs_total=counts.total,
        nodes_total=len(ordered),
        nodes_idle=sum(1 for n in ordered if n.state == "IDLE"),
        nodes_down=sum(1 for n in ordered if n.state in {"DOWN", "FAIL", "FAILING"}),
        nodes_drained=sum(1 for n in ordered if n.state in {"DRAINED", "DRAINING"}),
        nodes=tuple([figures(n) for n in ordered]),
    )


# --- gauges for Prometheus (exported by slurm_monitor.exporter) ----------------------------

TOP_PENDING_REASONS = 15  # distinct reason codes kept as labels; the rest are summed as "other"
OTHER_REASON = "other"
_REASON_CODE_MAX = 64


@functools.lru_cache(maxsize=4096)  # a queue has a few dozen distinct reasons, 40,000 pending jobs
def reason_code(reason: str | None) -> str:
    """The reason CODE of a pending job: Slurm appends details to some codes
    ("ReqNodeNotAvail, UnavailableNodes:node[1-3]", "Dependency: ..."), which would make the
    label a free-form (and unbounded) string; only the leading identifier is kept."""
    text = (reason or "").strip()
    for stop in (",", ":", " ", "("):
        text = text.split(stop, 1)[0]
    code = "".join(ch for ch in text if ch.isalnum() or ch == "_")[:_REASON_CODE_MAX]
    return code or "None"


def gauge_figures(jobs: Mapping[str, Job], nodes: Mapping[str, Node], collected_at: float,
                  top_reasons: int = TOP_PENDING_REASONS, counts: JobCounts | None = None) -> dict:
    """The cluster gauges as a small JSON-able dict, computed once per metrics poll from the
    snapshots the monitor already holds (see slurm_monitor.exporter for why not per scrape).

    Jobs are counted as squeue lists them (a pending array record "10_[3-99]" is one). Keys:
    ``jobs`` [[state, partition, count], ...]; ``pending_reasons`` {code: count} with at most
    ``top_reasons`` codes plus ``other``; ``nodes`` {state: count}; ``cpus``/``gpus``/
    ``memory_bytes`` {"alloc", "total"} (the same sums as compute_metrics);
    ``running_by_user`` {user: running jobs} (exported only where the site allows it).
    ``counts``: ``job_counts(jobs)`` if the caller has it already."""
    counts = counts or job_counts(jobs)
    node_states: dict[str, int] = {}
    for node in nodes.values():
        node_states[node.state] = node_states.get(node.state, 0) + 1
    mib = 1024 * 1024
    return {
        "collected_at": collected_at,
        "jobs": [[state, partition, count] for (state, partition), count in sorted(counts.by_state_partition.items())],
        "pending_reasons": top_counts(counts.pending_reasons, top_reasons, OTHER_REASON),
        "nodes": dict(sorted(node_states.items())),
        "cpus": {"alloc": sum(n.alloc_cpus for n in nodes.values()),
                 "total": sum(n.cpus for n in nodes.values())},
        "gpus": {"alloc": sum(n.alloc_gpus for n in nodes.values()),
                 "total": sum(n.gpus for n in nodes.values())},
        # allocated is capped by configured memory per node, as in compute_metrics
        "memory_bytes": {"alloc": sum(min(n.alloc_memory_mb, n.real_memory_mb) for n in nodes.values()) * mib,
                         "total": sum(n.real_memory_mb for n in nodes.values()) * mib},
        "running_by_user": dict(sorted(counts.running_by_user.items())),
    }


def top_counts(counts: Mapping[str, int], keep: int, other: str) -> dict[str, int]:
    """The ``keep`` largest counts (ties by name), the rest summed under ``other``."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    kept = dict(ranked[:keep])
    rest = sum(count for _, count in ranked[keep:])
    if rest:
        kept[other] = kept.get(other, 0) + rest
    return kept


# --- how late each stream is (PROTOCOL.md §6: degraded after 3 missed intervals) -------------

STALE_AFTER_INTERVALS = 3


@dataclass(frozen=True)
class StreamAge:
    """``age_seconds``: since the stream's last successful poll (since its first poll when
    none succeeded yet); ``late``: older than STALE_AFTER_INTERVALS of its interval."""

    stream: str
    age_seconds: float
    interval_seconds: float
    ok: bool
    late: bool


def stream_age(stream: str, interval: float, ok: bool, last_ok_at: float | None,
               first_at: float, now: float) -> StreamAge:
    since = last_ok_at if last_ok_at is not None else first_at
    age = max(0.0, now - since)
    return StreamAge(stream=stream, age_seconds=age, interval_seconds=interval, ok=ok,
                     late=age > STALE_AFTER_INTERVALS * interval)
