"""The jobs stream's history step (a part of ``Monitor``): purge old finished jobs and ask
``sacct`` how the jobs that left ``squeue`` unseen ended. After a jobs poll, at most once per
``History.interval`` (and right after the first); a job that left ``squeue`` before it was
seen ending gets its terminal event and notification from here."""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from slurm_monitor import gap
from slurm_monitor.collector import CollectError
from slurm_monitor.diff import Changes
from slurm_monitor.events import Publication, build_job_notification, build_job_removed, build_job_state_changed
from slurm_monitor.sacct import SACCT_MAX_IDS
from slurm_monitor.snapshot import Job

logger = logging.getLogger("slurm_monitor")


class HistorySteps:
    """Mixed into ``Monitor``: uses its collector, history settings, stats, deliver, _positions."""

    collector: Any
    history: Any
    stats: Any
    gap: Any  # gap.Window | None: after a restart, the downtime to ask sacct about, once
    scope: Any  # cluster_scope.Scope: whose rows

    async def deliver(self, changes: Changes, stream: str, offsets: dict[str, int] | None = None) -> int:
        raise NotImplementedError

    async def _positions(self, offsets: dict[str, int]) -> dict[str, tuple[int, str | None]]:
        raise NotImplementedError

    async def history_step(self) -> tuple[int, int]:
        """Purge finished jobs older than ``History.days`` (bounded), then one ``sacct`` call
        for the ended jobs without accounting (bounded). Returns (purged, accounted); a
        failure is logged and the jobs poll goes on."""
        from slurm_monitor import history
        from slurm_monitor.monitor_io import _db as db

        now = datetime.now(timezone.utc)
        column = self.scope.column
        purged = accounted = 0
        try:
            if self.gap is not None:  # once: a crash in it is logged below, not repeated
                window, self.gap = self.gap, None
                self.gap = await gap.settle(self, window)  # type: ignore[arg-type]  # self is a Monitor
            purged = await db(history.purge)(now - timedelta(days=self.history.days),
                                              self.history.purge_per_step, column)
            batch = min(self.history.sacct_batch, SACCT_MAX_IDS)
            ids = await db(history.needing_accounting)(batch, self.history.sacct_tries, column) if batch > 0 else []
            if ids:
                try:
                    answers = await self.collector.collect_accounting(ids)
                except CollectError as exc:  # no accounting (or no slurmdbd): say so once, loudly
                    level = logging.INFO if self.stats["sacct_failed"] else logging.WARNING
                    self.stats["sacct_failed"] += 1
                    logger.log(level, "sacct for %d ended jobs failed: %s", len(ids), exc)
                    answers = {}
                found = {job_id: a.as_dict() for job_id, a in answers.items()}
                positions = await self._publish_endings(await db(history.endings)(found, column))
                accounted = await db(functools.partial(history.save_accounting, cluster=column))(
                    ids, found, now, positions)
        except Exception:
            logger.exception("the history step failed; the monitor goes on")
        self.stats["history_purged"] += purged
        self.stats["history_accounted"] += accounted
        if purged or accounted:
            logger.info("history: %d old jobs purged, accounting for %d ended jobs", purged, accounted)
        return purged, accounted

    async def _publish_endings(self, endings: list[tuple[Job, Job]]) -> dict[str, tuple[int, str | None]]:
        """The terminal event and notification of each job that left ``squeue`` before it was
        seen ending (``history.endings``: between two polls, or while the monitor was down),
        then ``job_removed`` again with its final state: the queue's ``job_removed`` went out
        first, and a viewer that applies a state change as an upsert must drop the job
        again. Delivered before the accounting is saved, as a poll delivers before saving.
        Returns the positions to save with the accounting."""
        if not endings:
            return {}
        publications: list[Publication] = []
        notifications = []
        for before, after in endings:
            publications += [build_job_state_changed(before, after), build_job_removed(after)]
            note = build_job_notification(after)
            if note is not None:
                notifications.append(note)
        offsets: dict[str, int] = {}
        sent = await self.deliver(Changes(tuple(publications), tuple(notifications)), "jobs", offsets)
        self.stats["jobs_settled_by_sacct"] += len(endings)
        logger.info("history: %d jobs ended out of squeue's sight (sacct), %d events sent", len(endings), sent)
        return await self._positions(offsets)

