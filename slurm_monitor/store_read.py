"""The saved cluster state as the REST API serves it (``apis.py``; ``history`` uses the job
helpers). Read only: it never writes a row, it reads what ``store.save_*`` wrote.
``list_jobs``, ``list_nodes``, ``get_metrics`` and ``list_alerts`` each read inside
``store.consistent_read``, so their rows and the ``position`` of their channels come from one
snapshot (PROTOCOL.md section 6); ``find_job_rows`` and ``row_fields`` are building blocks a
caller runs inside its own ``consistent_read``. ``cluster`` arguments are a cluster's column
value (``clusters.py``); answers name the cluster by its display name (``clusters.display``).
"""

from __future__ import annotations

from typing import Any, Iterable

from django.db.models import Count, F, Q
from django.db.models.functions import Length

from slurm_monitor.arrays import job_matches, parse_job_ref
from slurm_monitor.clusters import PRIMARY, display, key, split_key, stream_key
from slurm_monitor.cluster_select import primary_name
from slurm_monitor.events import iso, job_fields, node_fields
from slurm_monitor.models import ClusterJob, ClusterNode, ClusterStream
from slurm_monitor.store import _job, _node, consistent_read, read_positions

VIEWS = ("active", "finished", "all")


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
