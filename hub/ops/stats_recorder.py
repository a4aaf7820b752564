"""Persists hub process stats: the engine calls ``record(stats)`` every few seconds.

``record`` upserts the process's HubProcess row (live figures, last heartbeat) and appends a
StatsSnapshot at most once per HUB_STATS_SNAPSHOT_SECONDS, pruning snapshots older than
HUB_STATS_RETENTION_DAYS. A process is alive while its heartbeat is younger than
HUB_PROCESS_ALIVE_SECONDS. Environment variables are read at use and validated with an
error that names the variable.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from django.db import transaction

from hub.engine.contracts import ProcessStats
from hub.models import ALIVE_SECONDS_DEFAULT, HubProcess, StatsSnapshot, alive_within_seconds
from realtime_project.env import env_number

SNAPSHOT_SECONDS_DEFAULT = 60.0
RETENTION_DAYS_DEFAULT = 7.0
__all__ = ["ALIVE_SECONDS_DEFAULT", "alive_within_seconds", "record", "prune_snapshots",
           "validate_settings"]


def _env_positive_float(name: str, default: float) -> float:
    return env_number(name, default, 0.0, exclusive=True)


def snapshot_interval_seconds() -> float:
    return _env_positive_float("HUB_STATS_SNAPSHOT_SECONDS", SNAPSHOT_SECONDS_DEFAULT)


def retention_days() -> float:
    return _env_positive_float("HUB_STATS_RETENTION_DAYS", RETENTION_DAYS_DEFAULT)


def validate_settings() -> None:
    """Raise ImproperlyConfigured naming the first bad variable (call at start-up)."""
    snapshot_interval_seconds()
    retention_days()
    alive_within_seconds()


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def _live_fields(stats: ProcessStats) -> dict:
    return {
        "host": stats.host[:255],
        "pid": stats.pid,
        "started_at": _utc(stats.started_at),
        "last_heartbeat": _utc(stats.last_heartbeat),
        "active_connections": stats.active_connections,
        "total_connections": stats.total_connections,
        "subscriptions_total": sum(stats.subscriptions.values()),
        "subscriptions": dict(stats.subscriptions),
        "messages_sent": stats.messages_sent,
        "messages_received": stats.messages_received,
        "errors_total": sum(stats.errors.values()),
        "errors": dict(stats.errors),
        "dropped_sends": stats.dropped_sends,
        "slow_consumer_closes": stats.slow_consumer_closes,
        "publish_latency_sum": stats.publish_latency_sum,
        "publish_latency_count": stats.publish_latency_count,
    }


def record(stats: ProcessStats) -> None:
    """Upsert the live row; maybe append a snapshot and prune old ones. Sync (DB I/O)."""
    interval = snapshot_interval_seconds()
    keep_days = retention_days()
    fields = _live_fields(stats)
    with transaction.atomic():
        process, _ = HubProcess.objects.update_or_create(server=stats.server[:200], defaults=fields)
        if _snapshot_due(process, interval):
            _append_snapshot(process)
            _prune(keep_days)


def _snapshot_due(process, interval: float) -> bool:
    last = process.snapshots.order_by("-recorded_at").values_list("recorded_at", flat=True).first()
    if last is None:
        return True
    return (process.last_heartbeat - last).total_seconds() >= interval


def _append_snapshot(process) -> None:
    StatsSnapshot.objects.create(
        process=process,
        recorded_at=process.last_heartbeat,
        active_connections=process.active_connections,
        total_connections=process.total_connections,
        subscriptions_total=process.subscriptions_total,
        messages_sent=process.messages_sent,
        messages_received=process.messages_received,
        errors_total=process.errors_total,
        dropped_sends=process.dropped_sends,
    )


def _prune(keep_days: float) -> int:
    """Old snapshots go, and so do processes silent for the whole retention period."""
    cutoff = datetime.now(tz=timezone.utc) - timedelta(days=keep_days)
    deleted, _ = StatsSnapshot.objects.filter(recorded_at__lt=cutoff).delete()
    HubProcess.objects.filter(last_heartbeat__lt=cutoff).delete()
    return deleted


def prune_snapshots() -> int:
    """Delete snapshots older than the retention; returns how many went."""
    return _prune(retention_days())
