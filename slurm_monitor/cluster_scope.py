"""The cluster ONE monitor watches (``run_slurm_monitor --cluster NAME``): its names, and the
one place its events are stamped (``Scope.stamp``, called by ``MonitorIO.deliver``, the road
every publication and notification of the monitor takes to the sink). Builders stay pure:
they know nothing of clusters; the stamp adds ``"cluster": <display name>`` to every payload
(so the copies on ``user:<name>`` and the stored notifications carry it too) and moves the
per-cluster channels (``jobs``, ``nodes``, ``metrics``) to ``jobs.NAME`` etc. for a cluster
that is not the primary (``clusters.channel``). Storage calls take ``Scope.column``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from slurm_monitor import clusters
from slurm_monitor.diff import Changes


def primary_name() -> str:
    """settings.SLURM_MONITOR_CLUSTER (``default`` when unset or without Django settings)."""
    try:
        from django.conf import settings

        return str(getattr(settings, "SLURM_MONITOR_CLUSTER", clusters.DEFAULT_NAME))
    except Exception:  # settings not configured (a pure unit test)
        return clusters.DEFAULT_NAME


@dataclass(frozen=True)
class Scope:
    name: str  # the display name: what events, REST rows and metrics call the cluster
    primary: str  # the primary cluster's name (settings.SLURM_MONITOR_CLUSTER)

    @property
    def column(self) -> str:
        """The ``cluster`` column's value for this cluster ("" for the primary)."""
        return clusters.column(self.name, self.primary)

    def channel(self, base: str) -> str:
        return clusters.channel(base, self.name, self.primary)

    def stamp(self, changes: Changes) -> Changes:
        """``changes`` with every payload naming the cluster and per-cluster channels moved."""
        if not changes.publications and not changes.notifications:
            return changes
        return Changes(
            tuple(dataclasses.replace(p, channel=self.channel(p.channel), data={**p.data, "cluster": self.name})
                  for p in changes.publications),
            tuple(dataclasses.replace(n, data={**n.data, "cluster": self.name}) for n in changes.notifications))


def scope(name: str | None = None) -> Scope:
    """The scope of the cluster ``name`` (validated; None: the primary)."""
    primary = primary_name()
    return Scope(clusters.validate(name if name is not None else primary), primary)
