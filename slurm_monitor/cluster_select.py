"""The REST side of several clusters (``slurm_monitor.clusters``): which clusters the hub
knows, and which one a request's ``?cluster=NAME`` names.

- ``primary_name()``: ``SLURM_MONITOR_CLUSTER`` (default ``default``).
- ``Selected``: one cluster as a request sees it: its ``name`` (what rows and answers call it),
  its ``column`` (the rows' ``cluster`` value: "" for the primary) and its channel names.
- ``select(raw)``: the cluster ``?cluster=`` names; absent or empty: the primary. Raises
  ``ClusterNameError`` for a name that cannot be one (the view answers 400) and
  ``UnknownCluster`` for a valid name no monitor ever saved anything for (404).
- ``known()``: every cluster with rows: the primary first, always, then the others by name,
  each with its channels, stream times and row counts (``GET /api/cluster/clusters``).

A cluster is known once its monitor saved a stream, a job or a node: nothing to configure on
the hub's side, the monitor's ``--cluster NAME`` is the registration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count

from slurm_monitor import clusters
from slurm_monitor.events import iso
from slurm_monitor.models import ClusterJob, ClusterNode, ClusterStream

STREAMS = clusters.PER_CLUSTER_CHANNELS


class UnknownCluster(LookupError):
    """A valid cluster name the hub has no rows for."""


def primary_name() -> str:
    from django.conf import settings

    return getattr(settings, "SLURM_MONITOR_CLUSTER", None) or clusters.DEFAULT_NAME


@dataclass(frozen=True)
class Selected:
    """One cluster as a request sees it: ``name`` (what events, rows and answers call it)
    and ``primary_name`` (the primary's, which decides its column and channels)."""

    name: str
    primary_name: str

    @property
    def primary(self) -> bool:
        return self.name == self.primary_name

    @property
    def column(self) -> str:
        """The rows' ``cluster`` value: "" for the primary."""
        return clusters.column(self.name, self.primary_name)

    def channel(self, base: str) -> str:
        """This cluster's channel ``base`` (``jobs``, ``nodes``, ``metrics``); shared ones unchanged."""
        return clusters.channel(base, self.name, self.primary_name)

    @property
    def channels(self) -> dict[str, str]:
        return {base: self.channel(base) for base in STREAMS}


def _has_rows(column: str) -> bool:
    return any(model.objects.filter(cluster=column).exists() for model in (ClusterStream, ClusterJob, ClusterNode))


def select(raw: str | None) -> Selected:
    """The cluster ``raw`` names (None or "": the primary); see the module docstring."""
    primary = primary_name()
    if raw is None or raw == "" or raw == primary:
        return Selected(primary, primary)
    clusters.validate(raw)
    if not _has_rows(raw):
        raise UnknownCluster(raw)
    return Selected(raw, primary)


def _counts(model, **filters) -> dict[str, int]:
    rows = model.objects.filter(**filters).order_by().values_list("cluster").annotate(n=Count("pk"))
    return dict(rows)


def known() -> dict[str, Any]:
    """``{"primary": name, "clusters": [...]}``: the primary first, then the others by name;
    ``updated_at`` is when each of its streams was last saved (null: never), ``jobs`` counts
    its queued jobs, ``nodes`` its nodes."""
    primary = primary_name()
    jobs = _counts(ClusterJob, left_queue_at__isnull=True)
    nodes = _counts(ClusterNode)
    columns = {clusters.PRIMARY, *jobs, *nodes, *_stream_columns()}
    times = dict(ClusterStream.objects.filter(
        name__in=[clusters.stream_key(c, s) for c in columns for s in STREAMS]).values_list("name", "updated_at"))
    answer = []
    for column in sorted(columns, key=lambda c: (c != clusters.PRIMARY, c)):
        chosen = Selected(clusters.display(column, primary), primary)
        stamps = {s: times.get(clusters.stream_key(column, s)) for s in STREAMS}
        answer.append({"name": chosen.name, "primary": chosen.primary, "channels": chosen.channels,
                       "updated_at": {s: iso(t.timestamp()) if t else None for s, t in stamps.items()},
                       "jobs": jobs.get(column, 0), "nodes": nodes.get(column, 0)})
    return {"primary": primary, "clusters": answer}


def _stream_columns() -> set[str]:
    return set(ClusterStream.objects.order_by().values_list("cluster", flat=True).distinct())
