"""The latest cluster state in the database: written by the monitor (sync ORM, call through
``sync_to_async``), read back by ``run_slurm_monitor --once`` (whose baseline is what the
previous run saved). The REST API's reads are in ``store_read``; stream heartbeats, in
``heartbeats``.

Writes are incremental: only jobs/nodes that changed since the previous snapshot are
upserted, in one transaction per stream. Nodes gone are deleted; jobs gone stay as history
(``left_queue_at`` set, ``ended_at`` set if not already) until ``history.purge``. Each save
also records, in the same transaction, the ``positions`` its publications got
(``{channel: (offset, epoch)}``), so that a reader inside ``consistent_read`` gets rows and
positions that agree (PROTOCOL.md section 6, ``position``).
"""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import datetime, timezone as dt_timezone
from typing import Any, Iterable, Iterator, Mapping

from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from slurm_monitor.clusters import PRIMARY, key, split_key, stream_key
from slurm_monitor.models import ClusterJob, ClusterNode, ClusterStream, JobTransition, StreamPosition
from slurm_monitor.snapshot import TERMINAL_JOB_STATES, Job, Node
from slurm_monitor.store_sql import JOB_COLUMNS, insert_rows

MAX_TRANSITIONS = 20  # per job: the newest are kept
CHUNK = 500  # ids per IN (...): under SQLite's variable limit whatever its build
SAVE_BATCH = 2000  # rows per INSERT ... ON CONFLICT built at once (memory, not SQL limits)

# {channel: (offset, epoch)}: what the publications of one save got; epoch None or "": unknown.
Positions = Mapping[str, tuple[int, "str | None"]]


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


def _batches(jobs: list[Job]) -> Iterator[list[Job]]:
    """SAVE_BATCH jobs at a time: their rows and SQL parameters are built per batch,
    not for all 100,000 rows of a baseline at once (hundreds of MB at the peak)."""
    for start in range(0, len(jobs), SAVE_BATCH):
        yield jobs[start:start + SAVE_BATCH]


def _touch(name: str, source: str, data: dict[str, Any] | None = None, cluster: str = PRIMARY) -> None:
    """Mark the stream ``name`` of the cluster whose column value is ``cluster`` as saved now."""
    defaults: dict[str, Any] = {"source": source[:64], "updated_at": timezone.now(), "cluster": cluster}
    if data is not None:
        defaults["data"] = data
    ClusterStream.objects.update_or_create(name=stream_key(cluster, name), defaults=defaults)


def save_positions(positions: Positions | None) -> None:
    """Record each channel's (offset, epoch); call inside the transaction saving the rows."""
    rows = [StreamPosition(channel=channel[:200], offset=int(offset), epoch=(epoch or "")[:64])
            for channel, (offset, epoch) in (positions or {}).items()]
    if rows:
        StreamPosition.objects.bulk_create(rows, update_conflicts=True, unique_fields=["channel"],
                                           update_fields=["offset", "epoch", "updated_at"])


def read_positions(channels: Iterable[str]) -> dict[str, dict[str, Any] | None]:
    """``{channel: {"offset", "epoch"}}``; None for a channel the monitor never published on
    since its rows were saved (then a client cannot resume: it reloads on ``subscribed``);
    ``epoch`` None when the sink could not tell it."""
    names = list(channels)
    found = {p.channel: p for p in StreamPosition.objects.filter(channel__in=names)}
    return {name: ({"offset": found[name].offset, "epoch": found[name].epoch or None}
                   if name in found else None) for name in names}


@contextlib.contextmanager
def consistent_read() -> Iterator[None]:
    """Every query inside sees one snapshot: rows and positions saved by one monitor
    transaction are read all or none. SQLite: a read transaction does that; PostgreSQL's
    default READ COMMITTED gives each statement its own snapshot, so ask for REPEATABLE READ
    (only possible as the transaction's first statement)."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def _moment(seconds: int | None, default: datetime) -> datetime:
    return datetime.fromtimestamp(seconds, tz=dt_timezone.utc) if seconds else default


def state_time(job: Job, default: datetime) -> datetime:
    """When ``job`` entered its state, as Slurm says where it does (else ``default``)."""
    if job.state in TERMINAL_JOB_STATES:
        return _moment(job.end_time, default)
    if job.state == "RUNNING":
        return _moment(job.start_time, default)
    if job.state == "PENDING":
        return _moment(job.submit_time, default)
    return default


def add_transitions(entered: list[tuple[str, str, datetime]]) -> None:
    """Record (job_id, state, at) and keep each job's newest MAX_TRANSITIONS."""
    if not entered:
        return
    for start in range(0, len(entered), SAVE_BATCH):  # bounded memory: a baseline enters 100,000
        insert_rows(JobTransition, ("job", "state", "at"),
                    [(j, s[:32], at) for j, s, at in entered[start:start + SAVE_BATCH]])
    ids = sorted({j for j, _s, _at in entered})
    for chunk in _chunks(ids):
        crowded = (JobTransition.objects.filter(job_id__in=chunk).values("job_id")
                   .annotate(n=Count("id")).filter(n__gt=MAX_TRANSITIONS))
        for row in crowded:
            keep = (JobTransition.objects.filter(job_id=row["job_id"]).order_by("-at", "-id")
                    .values_list("id", flat=True)[:MAX_TRANSITIONS])
            JobTransition.objects.filter(job_id=row["job_id"]).exclude(id__in=list(keep)).delete()


JOB_FIELDS = tuple(f.name for f in dataclasses.fields(Job))


def job_record(job: Job) -> dict[str, Any]:
    """``dataclasses.asdict(job)`` without its deep copy (every field of ``Job`` is a scalar
    or a tuple of strings): asdict cost ~0.2 ms a job, most of a 100,000-row baseline save."""
    return {name: getattr(job, name) for name in JOB_FIELDS}


def changed_jobs(previous: Mapping[str, Job], current: Mapping[str, Job]) -> list[Job]:
    """The jobs of ``current`` that differ from ``previous``. The tiered poll hands back the very
    object of a job it did not fetch again, so identity settles almost every job and only the
    fetched ones (~1 % per poll) are compared field by field: at 100,000 jobs this was 0.35 s
    of dataclass ``!=`` per poll."""
    get = previous.get
    return [job for job_id, job in current.items() if (before := get(job_id)) is not job and before != job]


def save_jobs(previous: Mapping[str, Job] | None, current: Mapping[str, Job], source: str = "",
              positions: Positions | None = None, now: datetime | None = None, cluster: str = PRIMARY) -> None:
    """Make the queued jobs of ``cluster`` (its column value, clusters.py) equal ``current``
    (keyed by Slurm id); ``previous`` is what was last saved (None: unknown, read the rows).
    Jobs no longer listed become history; each state a job enters is a transition;
    ``positions`` are saved with the rows. Another cluster's rows are never touched."""
    moment = now or timezone.now()
    with transaction.atomic():
        if previous is None:
            known = {split_key(k)[1]: state for k, state in ClusterJob.objects.filter(
                cluster=cluster, left_queue_at__isnull=True).values_list("job_id", "state")}
            gone = [job_id for job_id in known if job_id not in current]
            changed: list[Job] = list(current.values())
        else:
            gone = list(previous.keys() - current.keys())
            changed = changed_jobs(previous, current)
            known = {j.job_id: previous[j.job_id].state for j in changed if j.job_id in previous}
        for chunk in _chunks([key(cluster, job_id) for job_id in gone]):
            ClusterJob.objects.filter(job_id__in=chunk).update(left_queue_at=moment)
            ClusterJob.objects.filter(job_id__in=chunk, ended_at__isnull=True).update(ended_at=moment)
        for batch in _batches(changed):  # bounded memory: a baseline saves every row
            saved_at = timezone.now()  # updated_at (auto_now: only the ORM's save fills it in)
            insert_rows(ClusterJob, JOB_COLUMNS, [
                (key(cluster, j.job_id), cluster, j.user[:150], j.partition[:200], j.state[:32], job_record(j),
                 saved_at, j.array_job_id, _moment(j.end_time, moment) if j.finished else None, None, None, 0)
                for j in batch], unique="job_id", update=JOB_COLUMNS[2:10])
        add_transitions([(key(cluster, j.job_id), j.state, state_time(j, moment)) for j in changed
                         if known.get(j.job_id) != j.state])
        save_positions(positions)
        _touch("jobs", source, cluster=cluster)


_NODE_FIELDS = tuple(f.name for f in dataclasses.fields(Node))


def node_record(node: Node) -> dict[str, Any]:
    """``dataclasses.asdict(node)`` without its recursive deep copy (a Node's fields are
    scalars and tuples of str, which the JSON column stores as lists either way)."""
    return {name: getattr(node, name) for name in _NODE_FIELDS}


def save_nodes(previous: Mapping[str, Node] | None, current: Mapping[str, Node], source: str = "",
               positions: Positions | None = None, cluster: str = PRIMARY) -> None:
    """Make the nodes of ``cluster`` (its column value) equal ``current`` (keyed by node name)."""
    with transaction.atomic():
        if previous is None:
            ClusterNode.objects.filter(cluster=cluster).exclude(
                name__in=[key(cluster, name) for name in current]).delete()
            changed: Iterable[Node] = current.values()
        else:
            gone = [key(cluster, name) for name in previous if name not in current]
            if gone:
                ClusterNode.objects.filter(name__in=gone).delete()
            # identity first: a node the parser did not rebuild is the previous poll's object
            changed = [node for name, node in current.items()
                       if (before := previous.get(name)) is not node and before != node]
        rows = [ClusterNode(name=key(cluster, n.name), cluster=cluster, state=n.state[:32],
                            record=node_record(n)) for n in changed]
        if rows:
            ClusterNode.objects.bulk_create(
                rows, update_conflicts=True, unique_fields=["name"],
                update_fields=["state", "record", "updated_at"])
        save_positions(positions)
        _touch("nodes", source, cluster=cluster)


def save_metrics(payload: dict[str, Any], source: str = "", positions: Positions | None = None,
                 cluster: str = PRIMARY) -> None:
    with transaction.atomic():
        save_positions(positions)
        _touch("metrics", source, payload, cluster=cluster)


def save_alerts(active: list[dict[str, Any]], source: str = "", positions: Positions | None = None,
                cluster: str = PRIMARY) -> None:
    """The active alerts of ``cluster`` (each an ``alert`` event's payload)."""
    with transaction.atomic():
        save_positions(positions)
        _touch("alerts", source, {"active": active}, cluster=cluster)


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


def load_jobs(cluster: str = PRIMARY) -> dict[str, Job] | None:
    """The queued jobs saved for ``cluster`` (its column value), by Slurm id, or None when
    nothing was ever saved (or a record is unreadable)."""
    if not ClusterStream.objects.filter(name=stream_key(cluster, "jobs")).exists():
        return None
    jobs: dict[str, Job] = {}
    for row in ClusterJob.objects.filter(cluster=cluster, left_queue_at__isnull=True):
        job = _job(row.record)
        if job is None:
            return None
        jobs[job.job_id] = job
    return jobs


def load_nodes(cluster: str = PRIMARY) -> dict[str, Node] | None:
    """The nodes saved for ``cluster`` (its column value), by name; None as ``load_jobs``."""
    if not ClusterStream.objects.filter(name=stream_key(cluster, "nodes")).exists():
        return None
    nodes: dict[str, Node] = {}
    for row in ClusterNode.objects.filter(cluster=cluster):
        node = _node(row.record)
        if node is None:
            return None
        nodes[node.name] = node
    return nodes


def load_alerts(cluster: str = PRIMARY) -> list[dict[str, Any]]:
    """The active alerts ``save_alerts`` last saved for ``cluster`` (the monitor's baseline)."""
    row = ClusterStream.objects.filter(name=stream_key(cluster, "alerts")).first()
    data = row.data if row is not None and isinstance(row.data, dict) else {}
    active = data.get("active", [])
    return active if isinstance(active, list) else []
