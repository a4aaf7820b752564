"""PURE: threshold alerts with memory, so each is raised once when crossed and resolved once.

``evaluate_alerts(active, metrics, now)`` returns the new active set and the publications:
``alert`` when a rule's value goes above its threshold while not active, ``alert_resolved``
when an active rule's value falls back to ``clear_at`` or below. The gap between the two
(hysteresis) keeps a value hovering around the threshold from flapping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

from slurm_monitor.events import Publication, build_alert, build_alert_resolved
from slurm_monitor.metrics import ClusterMetrics


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
