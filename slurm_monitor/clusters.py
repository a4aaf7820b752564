"""PURE: several clusters, one hub. Names, channels and storage keys (tests/slurm_monitor/test_clusters.py).

One monitor process watches one cluster (``run_slurm_monitor --cluster NAME``). The
*primary* cluster is the one a monitor started without ``--cluster`` watches; its name is
``SLURM_MONITOR_CLUSTER`` (default ``default``). Zero configuration means one primary
cluster and nothing else changes: its channels are PROTOCOL.md's ``jobs``, ``nodes`` and
``metrics``, its rows keep their Slurm ids as keys.

Another cluster ``NAME`` publishes on ``jobs.NAME``, ``nodes.NAME``, ``metrics.NAME``: per
cluster channels, so a dashboard showing one cluster receives only that cluster's traffic
(the way slurm-web gives each cluster its own agent and API) and ``HUB_CHANNELS`` policies can
differ per cluster (``jobs.*`` is given the same default policy as ``jobs``, private jobs
included: a new cluster must never fall to the permissive catch-all). ``user:<name>``,
``notifications`` and ``alerts`` stay single channels: a person wants all of their jobs, an
operator all of their alerts, in one place; each event names its ``cluster``.

Storage: Slurm job ids and node names repeat across clusters, so rows carry ``cluster``
(``""`` for the primary: renaming the primary needs no data migration) and their primary key
is ``key(cluster, id)``: the plain id on the primary (rows written before clusters existed stay
valid) and ``NAME/id`` on the others (``/`` never occurs in a cluster name or a Slurm id).
"""

from __future__ import annotations

import re

PRIMARY = ""  # the ``cluster`` column's value for the primary cluster
DEFAULT_NAME = "default"  # SLURM_MONITOR_CLUSTER when unset
PER_CLUSTER_CHANNELS = ("jobs", "nodes", "metrics")  # the others are shared, see above
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")  # Slurm's ClusterName, without '.', ':', '/'


class ClusterNameError(ValueError):
    """Not a valid cluster name; the message says what is allowed."""


def validate(name: str) -> str:
    """``name`` if it is 1-40 characters of ``A-Za-z0-9_-`` starting with a letter or digit."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ClusterNameError(
            f"invalid cluster name {name!r}: 1-40 characters of A-Za-z0-9_- starting with a letter or digit")
    return name


def column(name: str, primary_name: str) -> str:
    """The ``cluster`` column's value for the cluster called ``name``."""
    return PRIMARY if name == primary_name else name


def display(value: str, primary_name: str) -> str:
    """The cluster's name for a ``cluster`` column value (events, REST rows, metrics)."""
    return primary_name if value == PRIMARY else value


def channel(base: str, name: str, primary_name: str) -> str:
    """The channel ``base`` (``jobs``, ``nodes``, ``metrics``) of the cluster ``name``; shared
    channels (``user:...``, ``notifications``, ``alerts``, ...) are returned unchanged."""
    if base not in PER_CLUSTER_CHANNELS or name == primary_name:
        return base
    return f"{base}.{name}"


def key(cluster_column: str, ident: str) -> str:
    """The primary key of a job or node row: the Slurm id on the primary, ``NAME/id`` elsewhere."""
    return ident if cluster_column == PRIMARY else f"{cluster_column}/{ident}"


def split_key(row_key: str) -> tuple[str, str]:
    """``key``'s inverse: (cluster column value, Slurm id or node name)."""
    cluster, sep, ident = row_key.partition("/")
    return (cluster, ident) if sep else (PRIMARY, row_key)


def stream_key(cluster_column: str, stream: str) -> str:
    """``ClusterStream``'s key for a stream (``jobs``, ``nodes``, ``metrics``) of a cluster."""
    return key(cluster_column, stream)
