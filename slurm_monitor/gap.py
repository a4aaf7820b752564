"""After a restart: the jobs that were submitted AND ended while the monitor was down (issue 13).

``resume`` settles the jobs the monitor had already seen (the first poll sends their
``job_removed``, the history step asks ``sacct`` how they ended: ``history.endings``). A job
that came and went entirely while it was down is in no saved row, so nothing would ever name it.
Once per start, right after the first jobs poll (the first history step), one bounded query
asks accounting for every job that ended in the gap (``Source.collect_ended``: ``sacct --json
--allusers -X -S <start> -E <end> -s <ended states>``, or slurmrestd's ``/slurmdb/`` jobs);
each job it names that has no row yet gets:

- its terminal event: ``job_submitted`` carrying the final record, then ``job_removed`` (it is
  no longer in ``squeue``); the notification of its final state, to its owner;
- its history row (left the queue, ended at accounting's end time, one transition), so REST
  ``view=finished`` and the job page find it; its usage (steps) is then asked through the
  history step's ``sacct -j`` like any ended job's (the row has no accounting yet).

Why ``job_submitted`` with the final state, not a made-up ``PENDING`` -> ``RUNNING`` -> end
sequence: it is the rule ``diff.diff_jobs`` already applies to a job first seen ended (the gap is
one long interval between two polls); the monitor never saw the states in between, a viewer
learns of the job and its end in one event, and one job costs two events however long the gap.
``job_state_changed`` would need a ``previous_state`` nobody saw.

Exactly once: a job with a row was seen (by the previous run, or by this run's first poll,
which is saved before the query), and the settle path owns it. The window ends when this run
started (``resume``), before its first poll: a job that ended later was either listed by that
poll (a row) or never can be again. It starts a minute before the previous run's last saved
jobs poll (that poll's ``squeue`` ran before its save; a wider start costs nothing, known jobs
are skipped). Bounds: the gap is cut to ``History.gap_hours`` (and to the history's ``days``,
whose rows would be purged anyway), the report to the ``History.gap_jobs`` latest-ended jobs;
either cut is logged as a warning naming what was left out. A failed query is retried at the
next history steps, ``History.sacct_tries`` times in all.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Iterable, Mapping

from django.db import transaction

from slurm_monitor import store
from slurm_monitor.clusters import PRIMARY, key, stream_key
from slurm_monitor.collector import CollectError
from slurm_monitor.diff import Changes
from slurm_monitor.events import build_job_notification, build_job_removed, build_job_submitted, iso
from slurm_monitor.models import ClusterJob, ClusterStream
from slurm_monitor.sacct import Accounting
from slurm_monitor.snapshot import TERMINAL_JOB_STATES, Job

if TYPE_CHECKING:
    from slurm_monitor.monitor import Monitor

logger = logging.getLogger("slurm_monitor")

SLACK_SECONDS = 60.0


@dataclass(frozen=True)
class Window:
    """Unix seconds; ``tries``: failed queries so far."""

    start: float
    end: float
    tries: int = 0


def saved_at(cluster: str = PRIMARY) -> float | None:
    """When the previous run for ``cluster`` (column value) last saved its jobs poll (None: never)."""
    row = ClusterStream.objects.filter(name=stream_key(cluster, "jobs")).first()
    return row.updated_at.timestamp() if row is not None else None


def window(saved: float | None, now: float, max_hours: float, days: float) -> Window | None:
    """The gap to ask about, cut to ``max_hours`` (and ``days``); None when there is none."""
    if saved is None:
        return None
    start = saved - SLACK_SECONDS
    longest = min(max_hours * 3600.0, days * 86400.0)
    if now - start > longest:
        logger.warning("gap: the monitor was down %.1f h; only jobs that ended after %s (the last %.1f h, "
                       "SLURM_MONITOR_GAP_HOURS) are reported, earlier ones are not",
                       (now - saved) / 3600.0, iso(now - longest), longest / 3600.0)
        start = now - longest
    return Window(start, now) if now > start else None


def unseen(found: Mapping[str, Accounting], cluster: str = PRIMARY) -> list[Accounting]:
    """The ended jobs in ``found`` (by Slurm id) that have no row in ``cluster``, oldest end first."""
    ids = [key(cluster, job_id) for job_id in found]
    known: set[str] = set()
    for start in range(0, len(ids), store.CHUNK):
        known.update(ClusterJob.objects.filter(job_id__in=ids[start:start + store.CHUNK])
                     .values_list("job_id", flat=True))
    fresh = [a for job_id, a in found.items()
             if key(cluster, job_id) not in known and a.state in TERMINAL_JOB_STATES]
    return sorted(fresh, key=lambda a: (a.end_time or 0, a.job_id))


def job_of(a: Accounting) -> Job:
    """The job record a never-seen job gets from accounting (``snapshot.Job``'s fields)."""
    return Job(job_id=a.job_id, name=a.name or "", user=a.user or "", partition=a.partition or "",
               state=a.state, reason=a.reason, nodes=a.nodes or "", node_count=None, cpus=a.cpus,
               gpus=a.gpus, memory_mb=a.memory_mb, submit_time=a.submit_time, start_time=a.start_time,
               end_time=a.end_time, time_limit_minutes=a.time_limit_minutes, exit_code=a.exit_code,
               signal=a.signal, state_flags=a.state_flags, array_job_id=a.array_job_id,
               array_task_id=a.array_task_id)


def changes(jobs: Iterable[Job]) -> Changes:
    publications, notifications = [], []
    for job in jobs:
        publications += [build_job_submitted(job), build_job_removed(job)]
        note = build_job_notification(job)
        if note is not None:
            notifications.append(note)
    return Changes(tuple(publications), tuple(notifications))


def record(jobs: list[Job], now: datetime, positions: store.Positions | None = None,
           cluster: str = PRIMARY) -> None:
    """The history rows of never-seen ended jobs (and the positions their events got), in one
    transaction. A row that exists by now is left as it is."""
    with transaction.atomic():
        rows = [ClusterJob(job_id=key(cluster, j.job_id), cluster=cluster, user=j.user[:150],
                           partition=j.partition[:200], state=j.state[:32],
                           record=dataclasses.asdict(j), array_job_id=j.array_job_id,
                           ended_at=store._moment(j.end_time, now), left_queue_at=store._moment(j.end_time, now))
                for j in jobs]
        ClusterJob.objects.bulk_create(rows, ignore_conflicts=True)
        store.add_transitions([(key(cluster, j.job_id), j.state, store._moment(j.end_time, now)) for j in jobs])
        store.save_positions(positions)


async def settle(monitor: Monitor, gap: Window) -> Window | None:
    """Ask about ``gap`` and report its never-seen jobs; None when done (or given up), else the
    window to retry at the next history step."""
    from slurm_monitor.monitor import _db

    limits = monitor.history
    try:
        found = await monitor.collector.collect_ended(gap.start, gap.end)
    except CollectError as exc:
        tries = gap.tries + 1
        last = tries >= limits.sacct_tries
        logger.warning("gap: asking accounting for the jobs that ended between %s and %s failed (%s)%s", iso(gap.start),
                       iso(gap.end), exc, "; given up: they are not reported" if last else "; retried next step")
        return None if last else dataclasses.replace(gap, tries=tries)
    fresh = await _db(unseen)(found, monitor.scope.column)
    if len(fresh) > limits.gap_jobs:
        logger.warning("gap: %d jobs ended unseen while the monitor was down; only the %d that ended last are "
                       "reported (SLURM_MONITOR_GAP_JOBS), %d are not", len(fresh), limits.gap_jobs,
                       len(fresh) - limits.gap_jobs)
        fresh = fresh[len(fresh) - limits.gap_jobs:] if limits.gap_jobs > 0 else []
    jobs = [job_of(a) for a in fresh]
    sent = 0
    if jobs:
        offsets: dict[str, int] = {}
        sent = await monitor.deliver(changes(jobs), "jobs", offsets)  # delivered, then saved: as a poll
        await _db(record)(jobs, datetime.now(timezone.utc), await monitor._positions(offsets),
                          monitor.scope.column)
    monitor.stats["jobs_reported_from_gap"] += len(jobs)
    logger.info("gap: %d jobs ended between %s and %s, %d of them never seen: reported, %d events sent",
                len(found), iso(gap.start), iso(gap.end), len(jobs), sent)
    return None
