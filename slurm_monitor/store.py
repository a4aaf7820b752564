"""The latest cluster state in the database: written by the monitor (sync ORM, call through
``sync_to_async``), read by the REST API and by ``run_slurm_monitor --once`` (whose baseline
is what the previous run saved).

Writes are incremental: only jobs/nodes that changed since the previous snapshot are
upserted, and the ones gone are deleted, in one transaction per stream.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping

from django.db import transaction
from django.db.models.functions import Length
from django.utils import timezone

from slurm_monitor.events import iso, job_fields, node_fields
from slurm_monitor.models import ClusterJob, ClusterNode, ClusterStream
from slurm_monitor.snapshot import Job, Node

JOB_LIST_LIMIT_MAX = 10_000


def _touch(name: str, source: str, data: dict[str, Any] | None = None) -> None:
    defaults: dict[str, Any] = {"source": source[:64], "updated_at": timezone.now()}
    if data is not None:
        defaults["data"] = data
    ClusterStream.objects.update_or_create(name=name, defaults=defaults)


def save_jobs(previous: Mapping[str, Job] | None, current: Mapping[str, Job], source: str = "") -> None:
    """Make the stored jobs equal ``current``; ``previous`` is what was last saved (None: unknown)."""
    with transaction.atomic():
        if previous is None:
            ClusterJob.objects.exclude(job_id__in=list(current)).delete()
            changed: Iterable[Job] = current.values()
        else:
            gone = [job_id for job_id in previous if job_id not in current]
            if gone:
                ClusterJob.objects.filter(job_id__in=gone).delete()
            changed = [job for job_id, job in current.items() if previous.get(job_id) != job]
        rows = [ClusterJob(job_id=j.job_id, user=j.user[:150], partition=j.partition[:200],
                           state=j.state[:32], record=dataclasses.asdict(j)) for j in changed]
        if rows:
            ClusterJob.objects.bulk_create(
                rows, update_conflicts=True, unique_fields=["job_id"],
                update_fields=["user", "partition", "state", "record", "updated_at"])
        _touch("jobs", source)


def save_nodes(previous: Mapping[str, Node] | None, current: Mapping[str, Node], source: str = "") -> None:
    with transaction.atomic():
        if previous is None:
            ClusterNode.objects.exclude(name__in=list(current)).delete()
            changed: Iterable[Node] = current.values()
        else:
            gone = [name for name in previous if name not in current]
            if gone:
                ClusterNode.objects.filter(name__in=gone).delete()
            changed = [node for name, node in current.items() if previous.get(name) != node]
        rows = [ClusterNode(name=n.name, state=n.state[:32], record=dataclasses.asdict(n)) for n in changed]
        if rows:
            ClusterNode.objects.bulk_create(
                rows, update_conflicts=True, unique_fields=["name"],
                update_fields=["state", "record", "updated_at"])
        _touch("nodes", source)


def save_metrics(payload: dict[str, Any], source: str = "") -> None:
    _touch("metrics", source, payload)


def save_alerts(active: list[dict[str, Any]], source: str = "") -> None:
    """The active alerts (each an ``alert`` event's payload)."""
    _touch("alerts", source, {"active": active})


def _job(record: dict[str, Any]) -> Job | None:
    try:
        return Job(**record)
    except TypeError:  # saved by an older release of the monitor
        return None


def _node(record: dict[str, Any]) -> Node | None:
    try:
        fields = dict(record, flags=tuple(record["flags"]), partitions=tuple(record["partitions"]))
        return Node(**fields)
    except (TypeError, KeyError):
        return None


def load_jobs() -> dict[str, Job] | None:
    """The saved jobs, or None when nothing was ever saved (or a record is unreadable)."""
    if not ClusterStream.objects.filter(name="jobs").exists():
        return None
    jobs = [_job(row.record) for row in ClusterJob.objects.all()]
    return None if any(j is None for j in jobs) else {j.job_id: j for j in jobs}


def load_nodes() -> dict[str, Node] | None:
    if not ClusterStream.objects.filter(name="nodes").exists():
        return None
    nodes = [_node(row.record) for row in ClusterNode.objects.all()]
    return None if any(n is None for n in nodes) else {n.name: n for n in nodes}


# --- read side for the REST API -------------------------------------------------------------


def _stream_info(name: str) -> tuple[str | None, str, dict[str, Any]]:
    row = ClusterStream.objects.filter(name=name).first()
    if row is None:
        return None, "", {}
    return iso(row.updated_at.timestamp()), row.source, row.data


def list_jobs(user: str | None = None, partition: str | None = None,
              states: list[str] | None = None, limit: int = 1000, offset: int = 0,
              owner: str | None = None) -> dict[str, Any]:
    """The saved jobs, filtered. ``owner`` (HUB_PRIVATE_JOBS, a non-staff caller) restricts
    the rows to that user's jobs before any filter: ``user`` can only narrow it."""
    rows = ClusterJob.objects.all()
    if owner is not None:
        rows = rows.filter(user=owner)
    if user:
        rows = rows.filter(user=user)
    if partition:
        rows = rows.filter(partition=partition)
    if states:
        rows = rows.filter(state__in=states)
    total = rows.count()
    page = rows.order_by(Length("job_id"), "job_id")[offset:offset + limit]
    jobs = [_job(r.record) for r in page]
    updated_at, source, _ = _stream_info("jobs")
    return {"count": total, "results": [job_fields(j) for j in jobs if j is not None],
            "updated_at": updated_at, "source": source}


def list_nodes(states: list[str] | None = None) -> dict[str, Any]:
    rows = ClusterNode.objects.order_by("name")
    if states:
        rows = rows.filter(state__in=states)
    nodes = [_node(r.record) for r in rows]
    updated_at, source, _ = _stream_info("nodes")
    return {"count": len(nodes), "results": [node_fields(n) for n in nodes if n is not None],
            "updated_at": updated_at, "source": source}


def get_metrics() -> dict[str, Any]:
    updated_at, source, data = _stream_info("metrics")
    return {"metrics": data or None, "updated_at": updated_at, "source": source}


def list_alerts() -> dict[str, Any]:
    updated_at, source, data = _stream_info("alerts")
    active = data.get("active", []) if isinstance(data, dict) else []
    return {"count": len(active), "results": active, "updated_at": updated_at, "source": source}


# --- stream heartbeats: written every poll, read by /api/health and /metrics ---------------

HEARTBEAT_PREFIX = "beat:"  # + stream name; ClusterStream.name holds 16 characters


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


def record_heartbeat(stream: str, ok: bool, interval: float, source: str = "") -> None:
    """One poll of ``stream`` ended, successfully (``ok``) or not; ``interval`` is the
    seconds between its polls, so a reader can judge lateness. Written on every poll,
    whether or not anything changed: a row that stops moving means the monitor stopped."""
    name = HEARTBEAT_PREFIX + stream
    now = timezone.now()
    row = ClusterStream.objects.filter(name=name).first()
    previous = row.data if row is not None and isinstance(row.data, dict) else {}
    data = {
        "interval": float(interval),
        "ok": bool(ok),
        "last_ok_at": now.timestamp() if ok else previous.get("last_ok_at"),
        "first_at": previous.get("first_at", now.timestamp()),
        "failures": 0 if ok else int(previous.get("failures") or 0) + 1,
    }
    ClusterStream.objects.update_or_create(
        name=name, defaults={"source": source[:64], "updated_at": now, "data": data})


def load_heartbeats() -> list[StreamBeat]:
    """Every stream's heartbeat, by stream name; [] when the monitor never reported."""
    beats = []
    for row in ClusterStream.objects.filter(name__startswith=HEARTBEAT_PREFIX).order_by("name"):
        data = row.data if isinstance(row.data, dict) else {}
        try:
            last_ok = data.get("last_ok_at")
            beats.append(StreamBeat(
                stream=row.name[len(HEARTBEAT_PREFIX):], interval=float(data["interval"]),
                ok=bool(data.get("ok")), last_poll_at=row.updated_at.timestamp(),
                last_ok_at=None if last_ok is None else float(last_ok),
                first_at=float(data.get("first_at", row.updated_at.timestamp())),
                failures=int(data.get("failures") or 0)))
        except (KeyError, TypeError, ValueError):
            continue  # written by something else: not a heartbeat we can judge
    return beats
