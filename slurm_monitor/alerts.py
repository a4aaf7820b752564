"""PURE: threshold alerts with memory, so each is raised once when crossed and resolved once.

Two engines. The rules as data (``RuleSpec``, from the AlertRule table; the second half of
this module) are what the monitor evaluates when it has a database (slurm_monitor.alerting
stores each alert's lifecycle). ``DEFAULT_RULES``/``evaluate_alerts`` below are the built-in
rules a monitor without a database (``persist=False``) keeps in memory.

``evaluate_alerts(active, metrics, now)`` returns the new active set and the publications:
``alert`` when a rule's value goes above its threshold while not active, ``alert_resolved``
when an active rule's value falls back to ``clear_at`` or below. The gap between the two
(hysteresis) keeps a value hovering around the threshold from flapping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from slurm_monitor.events import Publication, build_alert, build_alert_resolved
from slurm_monitor.metrics import ClusterMetrics
from slurm_monitor.snapshot import Job, Node


@dataclass(frozen=True)
class AlertRule:
    alert_id: str
    severity: str  # warning, critical
    threshold: float  # raised when value > threshold
    clear_at: float  # resolved when value <= clear_at
    value: Callable[[ClusterMetrics], float]
    raised_message: str  # str.format with value, threshold
    resolved_message: str


@dataclass(frozen=True)
class ActiveAlert:
    alert_id: str
    raised_at: float
    value: float
    data: dict = field(default_factory=dict, compare=False)  # the ``alert`` event's payload


DEFAULT_RULES: tuple[AlertRule, ...] = (
    AlertRule("cluster_cpu_high", "warning", 90.0, 85.0, lambda m: m.cpu_usage_percent,
              "Cluster CPU usage is {value:.1f}% (above {threshold:.0f}%)",
              "Cluster CPU usage is back to {value:.1f}%"),
    AlertRule("cluster_memory_high", "warning", 90.0, 85.0, lambda m: m.memory_usage_percent,
              "Cluster memory usage is {value:.1f}% (above {threshold:.0f}%)",
              "Cluster memory usage is back to {value:.1f}%"),
    AlertRule("cluster_gpu_high", "warning", 90.0, 85.0, lambda m: m.gpu_usage_percent,
              "Cluster GPU usage is {value:.1f}% (above {threshold:.0f}%)",
              "Cluster GPU usage is back to {value:.1f}%"),
    AlertRule("nodes_down", "critical", 0.0, 0.0, lambda m: float(m.nodes_down),
              "{value:.0f} node(s) down",
              "No node is down any more"),
)


def evaluate_alerts(
    active: Mapping[str, ActiveAlert],
    metrics: ClusterMetrics,
    now: float,
    rules: tuple[AlertRule, ...] = DEFAULT_RULES,
) -> tuple[dict[str, ActiveAlert], tuple[Publication, ...]]:
    still_active = dict(active)
    publications: list[Publication] = []
    for rule in rules:
        value = float(rule.value(metrics))
        current = still_active.get(rule.alert_id)
        if current is None and value > rule.threshold:
            message = rule.raised_message.format(value=value, threshold=rule.threshold)
            alert = build_alert(rule.alert_id, rule.severity, message, value, rule.threshold, now)
            publications.append(alert)
            still_active[rule.alert_id] = ActiveAlert(rule.alert_id, now, value, alert.data)
        elif current is not None and value <= rule.clear_at:
            message = rule.resolved_message.format(value=value, threshold=rule.threshold)
            publications.append(
                build_alert_resolved(rule.alert_id, message, value, rule.threshold,
                                     current.raised_at, now)
            )
            del still_active[rule.alert_id]
    return still_active, tuple(publications)


# --- rules as data (slurm_monitor.models.AlertRule), evaluated by slurm_monitor.alerting ---------
#
# A rule watches one metric over a scope (the cluster, each partition or one, each node or
# one). It fires when the value is above ``threshold`` AND the absolute figure behind it is at
# least ``min_count`` (allocated CPUs, nodes down, ...): "100 % of 2 CPUs" is not a full
# cluster, "1 % of 10,000 nodes down" is 100 nodes. It is raised once it has fired for
# ``duration_seconds`` (pending until then) and resolved when the value falls to ``clear_at``
# (hysteresis; the threshold when unset) or the count under ``min_count``.

DOWN_STATES = frozenset({"DOWN", "FAIL", "FAILING"})
DRAINED_STATES = frozenset({"DRAINED", "DRAINING"})
# metric -> (label, unit of the value, unit of the count)
RULE_METRICS: dict[str, tuple[str, str, str]] = {
    "cpu_alloc_percent": ("CPU allocation", "%", "CPUs"),
    "memory_alloc_percent": ("memory allocation", "%", "MB"),
    "gpu_alloc_percent": ("GPU allocation", "%", "GPUs"),
    "nodes_down_percent": ("nodes down", "%", "nodes"),
    "nodes_unavailable_percent": ("nodes down or drained", "%", "nodes"),
    "jobs_pending": ("pending jobs", "", "jobs"),
}
SCOPES = ("cluster", "partition", "node")


@dataclass(frozen=True)
class RuleSpec:
    name: str
    metric: str
    scope: str  # cluster, partition, node
    target: str  # a partition or node name; "" = each one (or the cluster)
    threshold: float
    clear_at: float | None
    min_count: int
    duration_seconds: float
    severity: str


@dataclass(frozen=True)
class Observation:
    target: str  # "" for the cluster
    value: float
    count: int


@dataclass(frozen=True)
class AlertState:
    """An unresolved stored alert: pending (``raised_at`` None) or raised."""

    rule: str
    target: str
    pending_since: float
    raised_at: float | None


@dataclass(frozen=True)
class Transition:
    kind: str  # pending, raise, resolve, drop (a pending one that stopped firing)
    rule: str
    target: str
    value: float
    count: int
    message: str


def alert_key(rule: str, target: str) -> str:
    """The ``alert_id`` on the wire: the rule's name, with ``:target`` for a partition/node."""
    return f"{rule}:{target}" if target else rule


def _pct(part: float, whole: float) -> float:
    return round(min(100.0, part / whole * 100.0), 1) if whole > 0 else 0.0


def _figure(metric: str, nodes: list[Node], pending: int) -> tuple[float, int]:
    if metric == "jobs_pending":
        return float(pending), pending
    if metric == "cpu_alloc_percent":
        alloc = sum(n.alloc_cpus for n in nodes)
        return _pct(alloc, sum(n.cpus for n in nodes)), alloc
    if metric == "memory_alloc_percent":
        alloc = sum(min(n.alloc_memory_mb, n.real_memory_mb) for n in nodes)
        return _pct(alloc, sum(n.real_memory_mb for n in nodes)), alloc
    if metric == "gpu_alloc_percent":
        alloc = sum(n.alloc_gpus for n in nodes)
        return _pct(alloc, sum(n.gpus for n in nodes)), alloc
    states = DOWN_STATES if metric == "nodes_down_percent" else DOWN_STATES | DRAINED_STATES
    out = sum(1 for n in nodes if n.state in states)
    return _pct(out, len(nodes)), out


def pending_by_partition(jobs: Mapping[str, Job]) -> dict[str, int]:
    """Pending jobs per partition (``metrics.JobCounts.pending_by_partition``, counted here
    when the caller has no counts)."""
    out: dict[str, int] = {}
    for job in jobs.values():
        if job.state == "PENDING":
            out[job.partition] = out.get(job.partition, 0) + 1
    return out


def observe(spec: RuleSpec, jobs: Mapping[str, Job], nodes: Mapping[str, Node],
            pending: Mapping[str, int] | None = None) -> list[Observation]:
    """The rule's value per target of its scope (an unknown metric observes nothing).
    ``pending``: ``pending_by_partition(jobs)`` if the caller has it (then ``jobs`` is unread)."""
    if spec.metric not in RULE_METRICS:
        return []
    if pending is None:
        pending = pending_by_partition(jobs)
    groups: dict[str, list[Node]] = {}
    if spec.scope == "cluster":
        groups[""] = list(nodes.values())
    elif spec.scope == "partition":
        for node in nodes.values():
            for partition in node.partitions:
                groups.setdefault(partition, []).append(node)
        for partition in pending:  # a partition with pending jobs but no node listed is still one
            groups.setdefault(partition, [])
    elif spec.scope == "node":
        groups = {name: [node] for name, node in nodes.items()}
    if spec.target:
        groups = {spec.target: groups[spec.target]} if spec.target in groups else {}
    out = []
    for target, members in sorted(groups.items()):
        if spec.scope == "partition":
            waiting = pending.get(target, 0)
        else:
            waiting = sum(pending.values()) if spec.scope == "cluster" else 0
        value, count = _figure(spec.metric, members, waiting)
        out.append(Observation(target, value, count))
    return out


def _message(spec: RuleSpec, obs: Observation, kind: str) -> str:
    label, unit, count_unit = RULE_METRICS[spec.metric]
    where = "Cluster" if spec.scope == "cluster" else f"{spec.scope.capitalize()} {obs.target}"
    figure = f"{obs.value:g}{unit}" + (f" ({obs.count} {count_unit})" if unit else "")
    if kind == "resolve":
        return f"{where}: {label} is back to {figure}"
    return f"{where}: {label} is {figure}, above {spec.threshold:g}{unit}"


def step(spec: RuleSpec, obs: Observation, state: AlertState | None, now: float) -> Transition | None:
    """The one transition (or none) of one rule on one target."""
    firing = obs.value > spec.threshold and obs.count >= spec.min_count
    clear_at = spec.threshold if spec.clear_at is None else spec.clear_at
    kind = None
    if state is None:
        if firing:
            kind = "raise" if spec.duration_seconds <= 0 else "pending"
    elif state.raised_at is None:
        if not firing:
            kind = "drop"
        elif now - state.pending_since >= spec.duration_seconds:
            kind = "raise"
    elif obs.value <= clear_at or obs.count < spec.min_count:
        kind = "resolve"
    if kind is None:
        return None
    return Transition(kind, spec.name, obs.target, obs.value, obs.count, _message(spec, obs, kind))


def evaluate_rules(specs: Sequence[RuleSpec], jobs: Mapping[str, Job], nodes: Mapping[str, Node],
                   states: Mapping[tuple[str, str], AlertState], now: float,
                   pending: Mapping[str, int] | None = None) -> list[Transition]:
    """Every transition of this poll. An unresolved alert whose rule or target is no longer
    evaluated (rule disabled or deleted, node gone) is resolved (dropped if only pending).
    ``pending``: as ``observe``'s, counted once here when not given (not once per rule)."""
    out, seen = [], set()
    if pending is None:
        pending = pending_by_partition(jobs)
    for spec in specs:
        for obs in observe(spec, jobs, nodes, pending):
            seen.add((spec.name, obs.target))
            transition = step(spec, obs, states.get((spec.name, obs.target)), now)
            if transition:
                out.append(transition)
    for (rule, target), state in sorted(states.items()):
        if (rule, target) not in seen:
            kind = "drop" if state.raised_at is None else "resolve"
            out.append(Transition(kind, rule, target, 0.0, 0, f"{alert_key(rule, target)}: no longer evaluated"))
    return out
