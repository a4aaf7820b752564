"""Finished jobs in the database: what ``sacct`` said of them, how long they are kept, and the
one-job view ``GET /api/cluster/jobs/<job_id>`` serves. Sync ORM (the monitor calls through
``sync_to_async``); ``store`` writes the rows as ``squeue`` shows them. The monitor's functions
take ``cluster`` (its column value, slurm_monitor.clusters) and speak plain Slurm ids: each
monitor purges and settles only its own cluster's rows.

- ``purge(cutoff, limit)``: delete history (rows ``squeue`` no longer lists) older than the
  cutoff, at most ``limit`` rows per call (the monitor calls it once per history step).
- ``needing_accounting(limit, max_tries)``: the ended jobs ``sacct`` has not yet answered for,
  oldest first; ``save_accounting`` stores its answers (a job ``squeue`` no longer lists also
  takes ``sacct``'s state, exit code and end time) and counts a try for the ids it did not know.
- ``endings(answers)``: before saving them, the jobs those answers end that were never reported
  as ended (left the queue in a state that is not final): (as last reported, as accounting
  says), so the monitor publishes their terminal event and notification exactly once.
- ``job_detail(text, owner, channels)``: a job's record, transitions, steps, efficiency and the
  stream ``position`` of ``channels`` read with them, with what the monitor last learned while
  someone watched it (``interest``: ``start_estimate``, ``live_efficiency``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Mapping

from django.db import transaction

from slurm_monitor import store, store_read
from slurm_monitor.clusters import PRIMARY, split_key
from slurm_monitor.clusters import key as row_key
from slurm_monitor import clusters
from slurm_monitor.events import iso
from slurm_monitor.interest import progress_fields
from slurm_monitor.models import ClusterJob, JobTransition
from slurm_monitor.sacct import efficiency
from slurm_monitor.snapshot import TERMINAL_JOB_STATES, Job

# How ``sacct``'s answer updates a job squeue no longer lists (record field <- accounting field).
_FROM_ACCOUNTING = ("state", "exit_code", "signal", "start_time", "end_time")


def purge(cutoff: datetime, limit: int, cluster: str = PRIMARY) -> int:
    """Delete up to ``limit`` history rows of ``cluster`` that left the queue before ``cutoff``
    (and their transitions). Returns how many jobs were deleted."""
    ids = list(ClusterJob.objects.filter(cluster=cluster, left_queue_at__lt=cutoff).order_by("left_queue_at")
               .values_list("job_id", flat=True)[:limit])
    if not ids:
        return 0
    with transaction.atomic():
        JobTransition.objects.filter(job_id__in=ids).delete()
        ClusterJob.objects.filter(job_id__in=ids).delete()
    return len(ids)


def needing_accounting(limit: int, max_tries: int, cluster: str = PRIMARY) -> list[str]:
    """Ended jobs of ``cluster`` without accounting yet, tried fewer than ``max_tries`` times,
    oldest end first; their Slurm ids."""
    return [split_key(k)[1] for k in ClusterJob.objects.filter(
        cluster=cluster, ended_at__isnull=False, accounting__isnull=True, accounting_tries__lt=max_tries)
        .order_by("ended_at", "job_id").values_list("job_id", flat=True)[:limit]]


def _settles(answer: Mapping[str, Any]) -> bool:
    return answer.get("state") not in (None, "", "UNKNOWN")


def _settled_record(record: Mapping[str, Any], answer: Mapping[str, Any]) -> dict[str, Any]:
    """A job's record once accounting has the last word (squeue no longer lists it)."""
    return {**record, "state_flags": list(answer.get("state_flags") or ()),
            **{k: answer[k] for k in _FROM_ACCOUNTING if answer.get(k) is not None}}


def endings(answers: Mapping[str, Mapping[str, Any]], cluster: str = PRIMARY) -> list[tuple[Job, Job]]:
    """(as last reported, as accounting says) for each answered job that left the queue in a
    state that is not final while ``sacct`` says it ended: it vanished from ``squeue`` between
    two polls or while the monitor was down, and its terminal event is still owed. A job
    whose saved state is already final had its terminal event: never again. Read-only; call
    before ``save_accounting`` (which settles these rows, so a second call finds none)."""
    found = []
    rows = ClusterJob.objects.filter(job_id__in=[row_key(cluster, j) for j in answers], left_queue_at__isnull=False)
    for row in rows.order_by("job_id"):
        answer = answers[split_key(row.job_id)[1]]
        if row.state in TERMINAL_JOB_STATES or not _settles(answer) \
                or answer["state"] not in TERMINAL_JOB_STATES:
            continue
        before = store._job(row.record)
        after = store._job(_settled_record(row.record, answer))
        if before is not None and after is not None:
            found.append((before, after))
    return found


def save_accounting(asked: Iterable[str], answers: Mapping[str, Mapping[str, Any]],
                    now: datetime, positions: store.Positions | None = None, cluster: str = PRIMARY) -> int:
    """Store ``sacct``'s answers (``Accounting.as_dict()`` by job id); every asked id it did not
    answer counts one more try. ``positions``: what the events about these answers got, saved
    in the same transaction. Returns how many jobs got accounting."""
    asked = [row_key(cluster, j) for j in asked]
    saved = 0
    with transaction.atomic():
        rows = {r.job_id: r for r in ClusterJob.objects.filter(job_id__in=asked)}
        entered = []
        for job_id, row in rows.items():  # job_id: the row's key; answers: by Slurm id
            answer = answers.get(split_key(job_id)[1])
            if answer is None:
                row.accounting_tries = min(row.accounting_tries + 1, 32767)
                row.save(update_fields=["accounting_tries"])
                continue
            row.accounting = dict(answer)
            fields = ["accounting", "updated_at"]
            if row.left_queue_at is not None and _settles(answer):
                # squeue no longer speaks for this job: accounting has the last word
                if answer["state"] != row.state:
                    entered.append((job_id, answer["state"], store._moment(answer.get("end_time"), now)))
                row.record = _settled_record(row.record, answer)
                row.state = str(answer["state"])[:32]
                if answer.get("end_time"):
                    row.ended_at = store._moment(answer["end_time"], now)
                fields += ["record", "state", "ended_at"]
            row.save(update_fields=fields)
            saved += 1
        store.add_transitions(entered)
        store.save_positions(positions)
    return saved


def visible_job(text: str, owner: str | None = None, cluster: str = PRIMARY) -> ClusterJob | None:
    """The row ``text`` names ("12", "10_1") on the cluster whose column is ``cluster``, or
    None when none (or, with ``owner``, none of that owner's): an exact id first; "10" naming
    an array: the array's own record, else its first task. The job page and its watch
    (``interest``) resolve ids the same way."""
    rows = store_read.find_job_rows(text, cluster)
    if rows is None:
        return None
    if owner is not None:
        rows = rows.filter(user=owner)
    return rows.filter(job_id=clusters.key(cluster, text.strip())).first() or rows.order_by("job_id").first()


# Fields squeue may leave empty that accounting knows (record field <- accounting field).
_FILL_FROM_ACCOUNTING = (("account", "account"), ("qos", "qos"), ("working_directory", "working_directory"))


def job_detail(text: str, owner: str | None = None, channels: Iterable[str] = (),
               cluster: str = PRIMARY) -> dict[str, Any] | None:
    """``GET /api/cluster/jobs/<job_id>``: None when no job by that id (or, with ``owner``, none
    of that owner's). ``text`` may be "10_1". ``position``: ``store.read_positions(channels)``
    in the same snapshot as the record and its transitions (PROTOCOL.md section 6), so a page
    subscribing ``since`` it misses no transition and applies none twice. ``steps``: what
    accounting recorded ([] until ``sacct`` answered, or where it keeps none). ``cluster``: the
    cluster's column value; the answer's ``job`` names it (``store_read.row_fields``)."""
    with store.consistent_read():
        row = visible_job(text, owner, cluster)
        if row is None:
            return None
        transitions = [{"state": t.state, "at": iso(t.at.timestamp())}
                       for t in row.transitions.order_by("at", "id")]
        live = progress_fields(row.job_id, row.state)
        position = store.read_positions(channels)
    fields = store_read.row_fields(row)
    if fields is None:
        return None
    accounting = row.accounting
    for field, key in _FILL_FROM_ACCOUNTING:
        if not fields.get(field) and accounting and accounting.get(key):
            fields[field] = accounting[key]
    steps = list(accounting.get("steps") or ()) if accounting else []
    return {"job": fields, "cluster": fields["cluster"], "transitions": transitions, "steps": steps,
            "accounting": accounting,
            "efficiency": efficiency(accounting), **live, "position": position}
