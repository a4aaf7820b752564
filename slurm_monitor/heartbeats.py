"""Stream heartbeats: the monitor writes one row per stream and cluster after every poll
(``record_heartbeat``, ok or not, whether or not anything changed), /api/health and /metrics
read them all (``load_heartbeats``) to tell a stream that is late, failing or never reported.
Rows live in ``ClusterStream`` under ``clusters.stream_key(cluster, HEARTBEAT_PREFIX + stream)``,
beside the streams ``store`` saves (the prefix keeps the names apart).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.db.models import Q
from django.utils import timezone

from slurm_monitor.clusters import PRIMARY, display, split_key, stream_key
from slurm_monitor.clusters import channel as channel_of
from slurm_monitor.models import ClusterStream

HEARTBEAT_PREFIX = "beat:"  # + stream name, under clusters.stream_key (``b/beat:jobs`` for cluster b)


@dataclasses.dataclass(frozen=True)
class StreamBeat:
    """The latest heartbeat of one monitor stream (Unix times). ``last_ok_at`` is None while
    no poll of this stream has succeeded; ``first_at`` is when the row was first written."""

    stream: str
    interval: float
    ok: bool
    last_poll_at: float
    last_ok_at: float | None
    first_at: float
    failures: int
    base_interval: float | None = None  # the configured interval; ``interval`` is the cadence's
    reason: str = ""  # why the cadence is what it is (``cadence.REASONS``); "" from older monitors
    detail: str = ""
    cluster: str = ""  # the cluster's display name (clusters.display)
    channel: str = ""  # the stream's channel on that cluster (clusters.channel): ``jobs``, ``jobs.b``


def record_heartbeat(stream: str, ok: bool, interval: float, source: str = "",
                     cadence: dict[str, Any] | None = None, cluster: str = PRIMARY) -> None:
    """One poll of ``stream`` ended, successfully (``ok``) or not; ``interval`` is the
    seconds between its polls now (the cadence may have stretched it), so a reader can judge
    lateness. ``cadence``: ``base_interval``, ``reason`` and ``detail`` (``cadence.Cadence``),
    kept in the row for admin and /metrics. Written on every poll, whether or not anything
    changed: a row that stops moving means the monitor stopped. ``cluster``: the column value
    of the monitor's cluster (clusters.py); each cluster's streams have their own rows."""
    name = stream_key(cluster, HEARTBEAT_PREFIX + stream)
    now = timezone.now()
    row = ClusterStream.objects.filter(name=name).first()
    previous = row.data if row is not None and isinstance(row.data, dict) else {}
    data = {
        "interval": float(interval),
        "ok": bool(ok),
        "last_ok_at": now.timestamp() if ok else previous.get("last_ok_at"),
        "first_at": previous.get("first_at", now.timestamp()),
        "failures": 0 if ok else int(previous.get("failures") or 0) + 1,
        **(cadence or {}),
    }
    ClusterStream.objects.update_or_create(
        name=name, defaults={"source": source[:64], "updated_at": now, "data": data, "cluster": cluster})


def load_heartbeats(primary_name: str | None = None) -> list[StreamBeat]:
    """Every stream's heartbeat of every cluster (the primary's first, then by cluster and
    stream name), each naming its ``cluster`` (display name; ``primary_name`` defaults to
    settings.SLURM_MONITOR_CLUSTER); [] when no monitor ever reported."""
    if primary_name is None:
        from django.conf import settings

        primary_name = getattr(settings, "SLURM_MONITOR_CLUSTER", "default")
    beats = []
    rows = ClusterStream.objects.filter(Q(name__startswith=HEARTBEAT_PREFIX)
                                        | Q(name__contains="/" + HEARTBEAT_PREFIX))
    for row in sorted(rows, key=lambda r: split_key(r.name)):
        column, name = split_key(row.name)
        if not name.startswith(HEARTBEAT_PREFIX):
            continue
        data = row.data if isinstance(row.data, dict) else {}
        try:
            last_ok = data.get("last_ok_at")
            beats.append(StreamBeat(
                stream=name[len(HEARTBEAT_PREFIX):], interval=float(data["interval"]),
                ok=bool(data.get("ok")), last_poll_at=row.updated_at.timestamp(),
                last_ok_at=None if last_ok is None else float(last_ok),
                first_at=float(data.get("first_at", row.updated_at.timestamp())),
                failures=int(data.get("failures") or 0),
                base_interval=None if data.get("base_interval") is None else float(data["base_interval"]),
                reason=str(data.get("reason") or ""), detail=str(data.get("detail") or ""),
                cluster=display(column, primary_name),
                channel=channel_of(name[len(HEARTBEAT_PREFIX):], display(column, primary_name), primary_name)))
        except (KeyError, TypeError, ValueError):
            continue  # written by something else: not a heartbeat we can judge
    return beats
