"""Interest-driven polling (issue 14): what open job pages watch, polled once per cycle for all.

A job page calls ``POST /api/cluster/jobs/<id>/watch`` on open and every 60 s while open
(``record_watch``: one ``JobWatch`` row per user and job, alive ``WATCH_SECONDS``; a user holds
at most ``MAX_WATCHES_PER_USER``, the least recently refreshed go first). The rows live in the
database because the monitor is another process.

Once per jobs cycle (at most every ``InterestConfig.interval`` seconds) ``Interest.step``:

1. reads the union of live watches (``watched_job_ids``: distinct job ids, at most
   ``progress.MAX_IDS``; expired rows are purged there), never one query per viewer;
2. asks the scheduler for the start estimate of the watched PENDING jobs (one ``squeue
   --start``) and the nodes for the usage of the watched RUNNING ones (one ``sstat``), through
   the collector's runner, so 100 viewers of one job cost what one does;
3. publishes ``job_progress`` for each job whose estimate or efficiency changed since the
   stored one (``JobProgress``), on ``jobs`` and ``user:<owner>`` like every job event, and
   stores the new figures with the positions those events got (``GET /api/cluster/jobs/<id>``
   serves them as ``start_estimate`` and ``live_efficiency``);
4. judges, once per job, finished jobs whose accounting arrived (``sacct``, ended within
   ``LOW_USAGE_WINDOW``): one that used under ``low_usage_fraction`` of the CPU or memory it
   asked for gets a ``job_low_usage`` notification, to its owner only.

A failed command or step is logged and the jobs poll goes on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Mapping

from django.db import IntegrityError, transaction

from slurm_monitor import progress, store
from slurm_monitor.collector import CollectError
from slurm_monitor.diff import Changes
from slurm_monitor.events import iso
from slurm_monitor.clusters import PRIMARY, key
from slurm_monitor.models import ClusterJob, JobProgress, JobWatch
from slurm_monitor.snapshot import Job

if TYPE_CHECKING:
    from slurm_monitor.monitor import Monitor

logger = logging.getLogger("slurm_monitor")

WATCH_SECONDS = 120
MAX_WATCHES_PER_USER = 20
LOW_USAGE_WINDOW = timedelta(days=1)  # older finished jobs are never judged (e.g. at first start)
LOW_USAGE_PER_STEP = 100

# {job_id: (start estimate in Unix seconds or None, live efficiency or None)}
Progress = Mapping[str, tuple["int | None", "dict[str, Any] | None"]]


@dataclass(frozen=True)
class InterestConfig:
    """``interval``: seconds between two steps (0: every jobs cycle); ``low_usage_fraction``:
    below this share of the CPU or memory asked for, a finished job's owner gets the note
    (0: never)."""

    interval: float = 10.0
    low_usage_fraction: float = 0.25


# --- the REST side: one page's interest ----------------------------------------------------


def record_watch(user, job_id: str, now: datetime | None = None, cluster: str = "") -> None:
    """``user`` watches the Slurm job ``job_id`` of the cluster whose column is ``cluster``
    (``clusters.column``) for ``WATCH_SECONDS`` more; their expired watches go, and beyond
    ``MAX_WATCHES_PER_USER`` (over every cluster) the ones refreshed longest ago."""
    now = now or datetime.now(timezone.utc)
    expires = now + timedelta(seconds=WATCH_SECONDS)
    try:
        with transaction.atomic():
            JobWatch.objects.update_or_create(user=user, cluster=cluster, job_id=job_id,
                                              defaults={"expires_at": expires})
    except IntegrityError:  # the same page's two tabs raced to create it: it exists now
        JobWatch.objects.filter(user=user, cluster=cluster, job_id=job_id).update(expires_at=expires)
    mine = JobWatch.objects.filter(user=user)
    mine.filter(expires_at__lte=now).delete()
    if mine.count() > MAX_WATCHES_PER_USER:
        keep = list(mine.order_by("-expires_at", "-id").values_list("id", flat=True)[:MAX_WATCHES_PER_USER])
        mine.exclude(id__in=keep).delete()


# --- the monitor side: database steps (sync ORM) -------------------------------------------


def watched_job_ids(now: datetime, limit: int = progress.MAX_IDS, cluster: str = PRIMARY) -> list[str]:
    """The distinct Slurm job ids some live watch of ``cluster`` (its column value) names (at
    most ``limit``); purges that cluster's expired rows."""
    JobWatch.objects.filter(cluster=cluster, expires_at__lte=now).delete()
    return list(JobWatch.objects.filter(cluster=cluster, expires_at__gt=now).order_by("job_id")
                .values_list("job_id", flat=True).distinct()[:limit])


def _comparable(live: dict[str, Any] | None) -> dict[str, Any] | None:
    return {k: v for k, v in live.items() if k != "measured_at"} if live else None


def changed_progress(found: Progress, cluster: str = PRIMARY) -> dict[str, tuple[int | None, dict[str, Any] | None]]:
    """Of ``found`` (by Slurm id), the jobs whose figures differ from the stored ones of
    ``cluster`` (a job with no row yet and nothing known is not a change)."""
    rows = {p.job_id: p for p in JobProgress.objects.filter(job_id__in=[key(cluster, j) for j in found])}
    changed = {}
    for job_id, (estimate, live) in found.items():
        row = rows.get(key(cluster, job_id))
        stored_estimate = int(row.start_estimate.timestamp()) if row and row.start_estimate else None
        stored_live = row.live_efficiency if row else None
        if (estimate, _comparable(live)) != (stored_estimate, _comparable(stored_live)):
            changed[job_id] = (estimate, live)
    return changed


def save_progress(changed: Progress, positions: store.Positions | None = None, cluster: str = PRIMARY) -> None:
    """Store the new figures of ``cluster``'s jobs (by Slurm id) that have a row (with the
    positions their events got)."""
    with transaction.atomic():
        known = set(ClusterJob.objects.filter(job_id__in=[key(cluster, j) for j in changed])
                    .values_list("job_id", flat=True))
        for job_id, (estimate, live) in changed.items():
            if key(cluster, job_id) in known:
                moment = datetime.fromtimestamp(estimate, tz=timezone.utc) if estimate else None
                JobProgress.objects.update_or_create(
                    job_id=key(cluster, job_id), defaults={"start_estimate": moment, "live_efficiency": live})
        store.save_positions(positions)


def usage_candidates(now: datetime, limit: int = LOW_USAGE_PER_STEP,
                     cluster: str = PRIMARY) -> list[tuple[Job, dict[str, Any]]]:
    """Finished jobs of ``cluster`` with accounting, ended within ``LOW_USAGE_WINDOW``, not yet judged."""
    rows = (ClusterJob.objects.filter(cluster=cluster, accounting__isnull=False,
                                      ended_at__gte=now - LOW_USAGE_WINDOW)
            .exclude(progress__usage_checked=True).order_by("ended_at", "job_id")[:limit])
    return [(job, dict(row.accounting or {})) for row in rows if (job := store._job(row.record)) is not None]


def mark_usage_checked(job_ids: list[str], cluster: str = PRIMARY) -> None:
    with transaction.atomic():
        for job_id in job_ids:
            JobProgress.objects.update_or_create(job_id=key(cluster, job_id), defaults={"usage_checked": True})


def progress_fields(job_id: str, state: str) -> dict[str, Any]:
    """``start_estimate`` (ISO, only while the job is pending) and ``live_efficiency`` (the
    last figures measured while it ran, with ``measured_at``) for the REST detail."""
    row = JobProgress.objects.filter(job_id=job_id).first()
    estimate = row.start_estimate if row is not None and state == "PENDING" else None
    return {"start_estimate": iso(estimate.timestamp()) if estimate else None,
            "live_efficiency": row.live_efficiency if row is not None else None}


# --- the step ------------------------------------------------------------------------------


class Interest:
    def __init__(self, config: InterestConfig | None = None, clock=time.time) -> None:
        self.config = config or InterestConfig()
        self.clock = clock
        self.due = 0.0  # monotonic time of the next step

    async def step(self, monitor: Monitor) -> int:
        """One step (see the module doc) when due; returns how many events and notes went out.
        Never raises."""
        if not monitor.persist or monitor.jobs is None or time.monotonic() < self.due:
            return 0
        self.due = time.monotonic() + self.config.interval
        try:
            return await self._step(monitor, monitor.jobs)
        except Exception:
            logger.exception("the interest step failed; the monitor goes on")
            return 0

    async def _step(self, monitor: Monitor, jobs: Mapping[str, Job]) -> int:
        from slurm_monitor.monitor import _db

        now = datetime.now(timezone.utc)
        column = monitor.scope.column
        watched = [jobs[i] for i in await _db(watched_job_ids)(now, progress.MAX_IDS, column) if i in jobs]
        found = await self._poll(monitor, watched)
        changed = await _db(changed_progress)(found, column) if found else {}
        publications = tuple(progress.build_job_progress(jobs[i], *changed[i]) for i in sorted(changed))
        judged: list[str] = []
        notes = []
        if self.config.low_usage_fraction > 0:
            for job, accounting in await _db(usage_candidates)(now, LOW_USAGE_PER_STEP, column):
                judged.append(job.job_id)
                figures = progress.low_usage(accounting, self.config.low_usage_fraction)
                if figures is not None:
                    notes.append(progress.build_low_usage_notification(job, figures))
        if not publications and not notes and not judged:
            return 0
        offsets: dict[str, int] = {}
        sent = await monitor.deliver(Changes(publications, tuple(notes)), "jobs", offsets)
        if changed:
            await _db(save_progress)(changed, await monitor._positions(offsets), column)
        if judged:
            await _db(mark_usage_checked)(judged, column)
        monitor.stats["job_progress_sent"] += len(publications)
        monitor.stats["low_usage_notes"] += len(notes)
        return sent

    async def _poll(self, monitor: Monitor, watched: list[Job]) -> dict[str, tuple[int | None, dict | None]]:
        """One ``squeue --start`` for the pending, one ``sstat`` for the running jobs watched."""
        pending = [j for j in watched if j.state == "PENDING"]
        running = [j for j in watched if j.state == "RUNNING"]
        found: dict[str, tuple[int | None, dict | None]] = {}
        if pending:
            try:
                estimates = await monitor.collector.collect_start_estimates([j.job_id for j in pending])
            except CollectError as exc:
                self._failed(monitor, "squeue --start", exc)
            else:
                for job in pending:
                    estimate = estimates.get(job.display_id, estimates.get(job.job_id))
                    found[job.job_id] = (estimate, None)
        if running:
            try:
                usage = await monitor.collector.collect_step_usage([j.job_id for j in running])
            except CollectError as exc:
                self._failed(monitor, "sstat", exc)
            else:
                now = self.clock()
                for job in running:
                    live = progress.live_efficiency(job, usage.get(job.display_id, usage.get(job.job_id)), now)
                    found[job.job_id] = (None, {**live, "measured_at": iso(now)} if live else None)
        return found

    @staticmethod
    def _failed(monitor: Monitor, what: str, exc: CollectError) -> None:
        """Say it loudly once, then quietly: a site without sstat would fill the log."""
        key = f"interest_{what.split()[0]}_failed"
        level = logging.INFO if monitor.stats[key] else logging.WARNING
        monitor.stats[key] += 1
        logger.log(level, "%s for watched jobs failed: %s", what, exc)
