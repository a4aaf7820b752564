"""The cluster gauges in the hub's ``/metrics``: jobs by state and partition, pending jobs by
reason, nodes by state, CPUs/GPUs/memory allocated and total, active alerts by severity and,
only where the site allows it, running jobs per user.

Why the monitor computes the figures and a scrape only reads them: at 100,000 jobs a scrape-
time aggregate is a GROUP BY over the whole job table, and pending reasons are not even a
column (they sit in the JSON ``record``, so every row would be decoded) — on every scrape, of
every Prometheus replica, of every hub process scraped. The monitor already holds both
snapshots in memory and walks them once per metrics poll (``compute_metrics``): one more pass
over the same dicts (``gauge_figures``) costs a few tens of milliseconds per poll, and the
result is one small row (ClusterStream ``gauges``) that a scrape reads by primary key. The
figures also come from ONE snapshot, so jobs, nodes and CPUs agree with each other and with
the ``metrics_update`` the dashboard shows. ``slurm_cluster_gauges_timestamp_seconds`` says
when they were computed (a stopped monitor shows as an old timestamp, never as zeros).

Per-user series (``slurm_user_jobs_running{user}``): user names as label values are
personal data, kept by Prometheus for its whole retention and readable by anyone who can
reach ``/metrics`` (which has no login). So they are off unless ``HUB_METRICS_PER_USER`` is
true, and never exported while ``HUB_PRIVATE_JOBS`` is on (a site that hides users' jobs from
each other does not publish who runs what), whatever HUB_METRICS_PER_USER says.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Iterable

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

GAUGES_STREAM = "gauges"
SEVERITIES = ("info", "warning", "critical")  # always exported (0 when none), so alert panels have a series
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def save_gauges(figures: dict[str, Any], source: str = "", positions: Any = None) -> None:
    """Store the figures of ``slurm_monitor.metrics.gauge_figures`` (sync ORM; the monitor
    calls it after each metrics poll, like every ``store.save_*``). No channel mirrors the
    gauges, so ``positions`` is always empty and ignored."""
    from slurm_monitor.models import ClusterStream

    ClusterStream.objects.update_or_create(
        name=GAUGES_STREAM, defaults={"data": figures, "source": source[:64], "updated_at": timezone.now()})


def per_user_allowed() -> bool:
    """HUB_METRICS_PER_USER (default off), and never with HUB_PRIVATE_JOBS."""
    from hub.conf import private_jobs

    raw = os.environ.get("HUB_METRICS_PER_USER", "").strip().lower()
    if raw not in _TRUE | _FALSE:
        raise ImproperlyConfigured(f"HUB_METRICS_PER_USER must be true or false, got {raw!r}")
    return raw in _TRUE and not private_jobs()


def _gauge(name: str, doc: str, labels: list[str], rows: Iterable[tuple[list[str], float]]):
    family = GaugeMetricFamily(name, doc, labels=labels)
    for values, value in rows:
        family.add_metric(values, float(value))
    return family


def _kinds(data: dict[str, Any], key: str) -> list[tuple[list[str], float]]:
    pair = data.get(key) or {}
    return [([kind], pair[kind]) for kind in ("alloc", "total") if kind in pair]


def gauge_families(data: dict[str, Any], per_user: bool) -> Iterable:
    yield GaugeMetricFamily("slurm_cluster_gauges_timestamp_seconds",
                            "Unix time the monitor computed the slurm_* gauges",
                            value=float(data.get("collected_at") or 0))
    yield _gauge("slurm_jobs", "Jobs squeue lists, by state and partition", ["state", "partition"],
                 (([state, partition], count) for state, partition, count in data.get("jobs", [])))
    yield _gauge("slurm_jobs_pending", "Pending jobs by reason code (the most frequent codes, "
                 "the rest summed as other)", ["reason"],
                 (([reason], count) for reason, count in data.get("pending_reasons", {}).items()))
    yield _gauge("slurm_nodes", "Nodes by state", ["state"],
                 (([state], count) for state, count in data.get("nodes", {}).items()))
    yield _gauge("slurm_cpus", "CPUs allocated (alloc) and configured (total)", ["kind"], _kinds(data, "cpus"))
    yield _gauge("slurm_gpus", "GPUs allocated (alloc) and configured (total)", ["kind"], _kinds(data, "gpus"))
    yield _gauge("slurm_memory_bytes", "Memory allocated (alloc) and configured (total)", ["kind"],
                 _kinds(data, "memory_bytes"))
    if per_user:
        yield _gauge("slurm_user_jobs_running", "Running jobs per user (HUB_METRICS_PER_USER)", ["user"],
                     (([user], count) for user, count in data.get("running_by_user", {}).items()))


def active_alerts_by_severity() -> dict[str, int]:
    from slurm_monitor.store import list_alerts

    counts = dict.fromkeys(SEVERITIES, 0)
    for alert in list_alerts()["results"]:
        severity = str(alert.get("severity", "")) if isinstance(alert, dict) else ""
        if severity:
            counts[severity] = counts.get(severity, 0) + 1
    return counts


class ClusterCollector(Collector):
    """Reads the monitor's last figures at scrape time; nothing when no monitor ever ran."""

    def collect(self) -> Iterable:
        from slurm_monitor.models import ClusterStream

        row = ClusterStream.objects.filter(name=GAUGES_STREAM).first()
        if row is not None and isinstance(row.data, dict):
            try:
                per_user = per_user_allowed()
            except ImproperlyConfigured as exc:  # fail closed: no names, the rest still served
                logger.error("/metrics: %s; per-user series are off", exc)
                per_user = False
            yield from gauge_families(row.data, per_user)
        yield _gauge("slurm_alerts_active", "Active cluster alerts by severity", ["severity"],
                     (([severity], count) for severity, count in active_alerts_by_severity().items()))
