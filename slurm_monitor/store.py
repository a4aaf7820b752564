"""The latest cluster state in the database: written by the monitor (sync ORM, call through
``sync_to_async``), read by the REST API and by ``run_slurm_monitor --once`` (whose baseline
is what the previous run saved).

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
from django.db.models import Count, F, Q
from django.db.models.functions import Length
from django.utils import timezone

from slurm_monitor.arrays import job_matches, parse_job_ref
from slurm_monitor.clusters import PRIMARY, display, key, split_key, stream_key
from slurm_monitor.clusters import channel as channel_of
from slurm_monitor.cluster_select import primary_name
from slurm_monitor.events import iso, job_fields, node_fields
from slurm_monitor.models import ClusterJob, ClusterNode, ClusterStream, JobTransition, StreamPosition
from slurm_monitor.snapshot import TERMINAL_JOB_STATES, Job, Node
from slurm_monitor.store_sql import JOB_COLUMNS, insert_rows

JOB_LIST_LIMIT_MAX = 10_000
MAX_TRANSITIONS = 20  # per job: the newest are kept
CHUNK = 500  # ids per IN (...): under SQLite's variable limit whatever its build
SAVE_BATCH = 2000  # rows per INSERT ... ON CONFLICT built at once (memory, not SQL limits)

# {channel: (offset, epoch)}: what the publications of one save got; epoch None or "": unknown.
Positions = Mapping[str, tuple[int, "str | None"]]
VIEWS = ("active", "finished", "all")


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


# --- read side for the REST API -------------------------------------------------------------


def _stream_info(name: str, cluster: str = PRIMARY) -> tuple[str | None, str, dict[str, Any]]:
    """(updated_at, source, data) of the stream ``name`` of the cluster whose column is ``cluster``."""
    row = ClusterStream.objects.filter(name=stream_key(cluster, name)).first()
    if row is None:
        return None, "", {}
    return iso(row.updated_at.timestamp()), row.source, row.data


def row_fields(row: ClusterJob) -> dict[str, Any] | None:
    """A job row as REST serves it: ``job_fields`` plus ``in_queue``, ``ended_at`` and
    ``cluster`` (the cluster's name, ``clusters.display``)."""
    job = _job(row.record)
    if job is None:
        return None
    return {**job_fields(job), "in_queue": row.left_queue_at is None,
            "ended_at": iso(row.ended_at.timestamp()) if row.ended_at else None,
            "cluster": display(row.cluster, primary_name())}


def find_job_rows(text: str, cluster: str = PRIMARY):
    """The rows ``text`` names on the cluster whose column is ``cluster``: "12" (a job, or
    every task of array 12) or "10_1" (one task, also while it waits in its array's pending
    record). None when ``text`` is no job id."""
    ref = parse_job_ref(text)
    if ref is None:
        return None
    rows = ClusterJob.objects.filter(cluster=cluster)
    if ref.task is None:
        return rows.filter(Q(job_id=key(cluster, ref.job_id)) | Q(array_job_id=ref.job_id))
    candidates = rows.filter(array_job_id=ref.job_id).only("job_id", "record")
    ids = [r.job_id for r in candidates if (j := _job(r.record)) is not None and job_matches(j, ref)]
    return rows.filter(job_id__in=ids)


# ``ordering`` values of list_jobs: a column, or one of the record's fields; "-" reverses.
# Every ordering ends with the job id, so pages never overlap or skip.
JOB_ORDERINGS: dict[str, tuple[Any, ...]] = {
    "job_id": (), "user": ("user",), "partition": ("partition",), "state": ("state",),
    "name": ("record__name",), "submit_time": ("record__submit_time",),
    "start_time": ("record__start_time",), "time_limit": ("record__time_limit_minutes",),
    "cpus": ("record__cpus",), "ended_at": ("ended_at",),
}


def _order_by(ordering: str | None, view: str) -> list[Any]:
    """The ORDER BY of a page: ``ordering`` (None: by job id, numerically; ``finished``:
    newest ending first), then the job id in the same direction."""
    if ordering is None:
        ordering = "-ended_at" if view == "finished" else "job_id"
    descending = ordering.startswith("-")
    fields = [*JOB_ORDERINGS[ordering.lstrip("-")], Length("job_id"), "job_id"]
    out = []
    for field in fields:
        expr = F(field) if isinstance(field, str) else field
        out.append(expr.desc(nulls_last=True) if descending else expr.asc(nulls_last=True))
    return out


def list_jobs(user: str | None = None, partition: str | None = None,
              states: list[str] | None = None, limit: int = 1000, offset: int = 0,
              owner: str | None = None, view: str = "active", job: str | None = None,
              channels: Iterable[str] = ("jobs",), ordering: str | None = None,
              after: str | None = None, search: str | None = None,
              cluster: str = PRIMARY) -> dict[str, Any]:
    """The saved jobs, filtered, with the ``position`` of ``channels`` read in the same
    snapshot. ``owner`` (HUB_PRIVATE_JOBS, a non-staff caller) restricts the rows to that
    user's jobs before any filter: ``user`` can only narrow it. ``view``: ``active`` (what
    squeue lists now: the mirror of the ``jobs`` stream), ``finished`` (every job that ended,
    listed or not, newest first), ``all``. ``job``: an id as ``find_job_rows`` reads it.
    ``search``: text in the job's name, or the start of its id. ``ordering``: a key of
    JOB_ORDERINGS, "-" for descending. ``after``: a job id, for keyset paging by job id
    (``ordering`` job_id, the default of ``active``): the rows after it; ``next`` is the
    cursor of the following page (None on the last), ``count`` counts every row that passes
    the filters, ``states`` counts them per state (before ``after``/``offset``). ``cluster``:
    the cluster's column value (``clusters.column``); ids (``job``, ``after``, ``search``,
    ``next``) are its Slurm ids."""
    with consistent_read():
        rows = ClusterJob.objects.filter(cluster=cluster) if job is None else find_job_rows(job, cluster)
        if rows is None:
            rows = ClusterJob.objects.none()
        if owner is not None:
            rows = rows.filter(user=owner)
        if user:
            rows = rows.filter(user=user)
        if partition:
            rows = rows.filter(partition=partition)
        if states:
            rows = rows.filter(state__in=states)
        if view == "active":
            rows = rows.filter(left_queue_at__isnull=True)
        elif view == "finished":
            rows = rows.filter(ended_at__isnull=False)
        if search:
            rows = rows.filter(Q(record__name__icontains=search) | Q(job_id__startswith=key(cluster, search)))
        total = rows.count()
        states_count = dict(rows.order_by().values_list("state").annotate(n=Count("job_id")))
        if after is not None:
            after = key(cluster, after)  # same prefix on every row: length then text still orders by id
            rows = rows.annotate(id_length=Length("job_id")).filter(
                Q(id_length__gt=len(after)) | Q(id_length=len(after), job_id__gt=after))
        chosen = list(rows.order_by(*_order_by(ordering, view))[offset:offset + limit + 1])
        more, chosen = len(chosen) > limit, chosen[:limit]
        page = [row_fields(r) for r in chosen]
        updated_at, source, _ = _stream_info("jobs", cluster)
        position = read_positions(channels)
    keyset = (ordering or ("-ended_at" if view == "finished" else "job_id")) == "job_id"
    return {"count": total, "results": [r for r in page if r is not None],
            "updated_at": updated_at, "source": source, "position": position,
            "states": states_count, "cluster": display(cluster, primary_name()),
            "next": split_key(chosen[-1].job_id)[1] if more and keyset and chosen else None}


def list_nodes(states: list[str] | None = None, cluster: str = PRIMARY,
               channels: Iterable[str] = ("nodes",)) -> dict[str, Any]:
    """The nodes of the cluster whose column is ``cluster``, with the ``position`` of ``channels``
    (its ``nodes`` channel) read in the same snapshot."""
    name = display(cluster, primary_name())
    with consistent_read():
        rows = ClusterNode.objects.filter(cluster=cluster).order_by("name")
        if states:
            rows = rows.filter(state__in=states)
        nodes = [_node(r.record) for r in rows]
        updated_at, source, _ = _stream_info("nodes", cluster)
        position = read_positions(channels)
    return {"count": len(nodes), "results": [{**node_fields(n), "cluster": name} for n in nodes if n is not None],
            "updated_at": updated_at, "source": source, "position": position, "cluster": name}


def get_metrics(cluster: str = PRIMARY, channels: Iterable[str] = ("metrics",)) -> dict[str, Any]:
    with consistent_read():
        updated_at, source, data = _stream_info("metrics", cluster)
        position = read_positions(channels)
    return {"metrics": data or None, "updated_at": updated_at, "source": source, "position": position,
            "cluster": display(cluster, primary_name())}


def list_alerts(cluster: str = PRIMARY) -> dict[str, Any]:
    """The active alerts of one cluster; each names its ``cluster`` (the ``alerts`` channel is
    shared by every cluster, its events say which)."""
    name = display(cluster, primary_name())
    with consistent_read():
        updated_at, source, data = _stream_info("alerts", cluster)
        position = read_positions(["alerts"])
    active = data.get("active", []) if isinstance(data, dict) else []
    results = [{**a, "cluster": a.get("cluster") or name} if isinstance(a, dict) else a for a in active]
    return {"count": len(results), "results": results, "updated_at": updated_at, "source": source,
            "position": position, "cluster": name}



# --- stream heartbeats: written every poll, read by /api/health and /metrics ---------------

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
