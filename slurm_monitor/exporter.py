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

Several clusters (slurm_monitor.clusters): each monitor saves its own cluster's row
(``clusters.stream_key(column, "gauges")``) and every series carries a ``cluster`` label (the
display name, the primary's is SLURM_MONITOR_CLUSTER), so ``sum without (cluster)`` gives the site.

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


def save_gauges(figures: dict[str, Any], source: str = "", positions: Any = None, cluster: str = "") -> None:
    """Store the figures of ``slurm_monitor.metrics.gauge_figures`` (sync ORM; the monitor
    calls it after each metrics poll, like every ``store.save_*``) for ``cluster`` (its column
    value). No channel mirrors the gauges, so ``positions`` is always empty and ignored."""
    from slurm_monitor.clusters import stream_key
    from slurm_monitor.models import ClusterStream

    ClusterStream.objects.update_or_create(
        name=stream_key(cluster, GAUGES_STREAM),
        defaults={"data": figures, "source": source[:64], "updated_at": timezone.now(), "cluster": cluster})


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


def _merged(families: Iterable[Iterable[Any]]) -> Iterable:
    """One family per metric name out of each cluster's families, in first-seen order (a
    scrape must not name a metric twice)."""
    merged: dict[str, Any] = {}
    for per_cluster in families:
        for family in per_cluster:
            if family.name in merged:
                merged[family.name].samples.extend(family.samples)
            else:
                merged[family.name] = family
    return merged.values()


def _kinds(data: dict[str, Any], key: str) -> list[tuple[list[str], float]]:
    pair = data.get(key) or {}
    return [([kind], pair[kind]) for kind in ("alloc", "total") if kind in pair]


def gauge_families(data: dict[str, Any], per_user: bool, cluster: str = "default") -> Iterable:
    """One cluster's families, every series labelled ``cluster`` (its display name)."""
    c = [cluster]
    yield _gauge("slurm_cluster_gauges_timestamp_seconds", "Unix time the monitor computed the slurm_* gauges",
                 ["cluster"], [(c, float(data.get("collected_at") or 0))])
    yield _gauge("slurm_jobs", "Jobs squeue lists, by state and partition", ["cluster", "state", "partition"],
                 (([cluster, state, partition], count) for state, partition, count in data.get("jobs", [])))
    yield _gauge("slurm_jobs_pending", "Pending jobs by reason code (the most frequent codes, "
                 "the rest summed as other)", ["cluster", "reason"],
                 (([cluster, reason], count) for reason, count in data.get("pending_reasons", {}).items()))
    yield _gauge("slurm_nodes", "Nodes by state", ["cluster", "state"],
                 (([cluster, state], count) for state, count in data.get("nodes", {}).items()))
    for name, doc, field in (("slurm_cpus", "CPUs", "cpus"), ("slurm_gpus", "GPUs", "gpus"),
                             ("slurm_memory_bytes", "Memory", "memory_bytes")):
        yield _gauge(name, f"{doc} allocated (alloc) and configured (total)", ["cluster", "kind"],
                     ((c + kind, value) for kind, value in _kinds(data, field)))
    if per_user:
        yield _gauge("slurm_user_jobs_running", "Running jobs per user (HUB_METRICS_PER_USER)", ["cluster", "user"],
                     (([cluster, user], count) for user, count in data.get("running_by_user", {}).items()))


def active_alerts_by_severity() -> dict[tuple[str, str], int]:
    """{(cluster display name, severity): active alerts}; every severity of every cluster that
    saved alerts (the primary always), 0 when none."""
    from slurm_monitor.clusters import display, split_key
    from slurm_monitor.cluster_scope import primary_name
    from slurm_monitor.models import ClusterStream
    from slurm_monitor.store import load_alerts

    primary = primary_name()
    columns = {""} | {split_key(name)[0] for name in ClusterStream.objects.filter(
        name__endswith="/alerts").values_list("name", flat=True)}
    counts: dict[tuple[str, str], int] = {}
    for column in sorted(columns):
        cluster = display(column, primary)
        counts.update({(cluster, severity): 0 for severity in SEVERITIES})
        for alert in load_alerts(column):
            severity = str(alert.get("severity", "")) if isinstance(alert, dict) else ""
            if severity:
                counts[(cluster, severity)] = counts.get((cluster, severity), 0) + 1
    return counts


class ClusterCollector(Collector):
    """Reads the monitor's last figures at scrape time; nothing when no monitor ever ran."""

    def collect(self) -> Iterable:
        from django.db.models import Q

        from slurm_monitor.clusters import display, split_key
        from slurm_monitor.cluster_scope import primary_name
        from slurm_monitor.models import ClusterStream

        rows = [r for r in ClusterStream.objects.filter(Q(name=GAUGES_STREAM) | Q(name__endswith="/" + GAUGES_STREAM))
                if isinstance(r.data, dict)]
        if rows:
            try:
                per_user = per_user_allowed()
            except ImproperlyConfigured as exc:  # fail closed: no names, the rest still served
                logger.error("/metrics: %s; per-user series are off", exc)
                per_user = False
            primary = primary_name()
            yield from _merged(gauge_families(r.data, per_user, display(split_key(r.name)[0], primary))
                               for r in sorted(rows, key=lambda r: r.name))
        yield _gauge("slurm_alerts_active", "Active cluster alerts by severity", ["cluster", "severity"],
                     (([cluster, severity], count)
                      for (cluster, severity), count in active_alerts_by_severity().items()))
