"""The loop: collect -> diff -> publish, per stream, and never die on one bad poll.

Three streams run side by side, each on its own interval: jobs (``squeue``), nodes (node
command, then alerts) and metrics (computed from the two latest snapshots: no Slurm command of
its own). A poll that fails (command failed, timed out, broken output) sends nothing and keeps
the last good snapshot, so the next good poll is diffed against it: no event is lost or
repeated. Anything unexpected in a poll is logged with its traceback and the loop goes on.

The number of Slurm commands depends only on the intervals: one poll serves every viewer,
through the hub. Jobs polls are tiered (``tiers.JobTiers``: a cheap state tier, the JSON detail
of new or changed jobs, a full cycle every ``full_every`` polls). Nodes are polled in full:
measured at 10,000 simulated nodes a nodes poll costs 0.15 CPU s, and the metrics need the
allocation and load figures, which change on most busy nodes between two polls, so a state
tier would fetch the detail of nearly every node anyway; what did not change is not parsed,
diffed, figured or saved again, and the nodes and metrics streams wait for an in-flight jobs
poll before their CPU work (``monitor_nodes``). Each stream waits its ``Cadence``
(stretched when Slurm is slow, failing or busy; visible in the log, the heartbeat rows, admin
and /metrics); one poll per stream is in flight, ever (``in_flight``).

A run starts from the state the previous one saved (``resume``), so its first poll reports
what changed meanwhile. The latest state is saved for REST (``store``)
after delivering events, with the offsets (and epochs) those events got, in one transaction:
a REST reader's ``position`` then matches its rows exactly. After a jobs poll comes the
history step (``history_step``); after a restart, the first step also asks once about the jobs
that came and went unseen (``gap``). The loop that runs the streams is ``loop.run_streams``.

Every poll of every stream ends with a heartbeat (``heartbeats.record_heartbeat``: ok or not, and
the stream's current interval and its reason), whether or not anything changed, so
/api/health, /metrics and the dashboard can tell a quiet cluster from a dead monitor. ``metrics_update`` carries each
stream's last successful poll (``streams``) for pages, which see no database.

One monitor watches one cluster (``cluster``: ``cluster_scope.Scope``): its rows, heartbeats,
alerts and figures are that cluster's, and ``MonitorIO.deliver`` stamps every event with it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Callable


from slurm_monitor import gap, store
from slurm_monitor.alerts import ActiveAlert
from slurm_monitor.cadence import Cadence
from slurm_monitor.cluster_scope import scope
from slurm_monitor.collector import CollectError
from slurm_monitor.diff import ResourceMark, diff_jobs
from slurm_monitor.figures import FigureCache
from slurm_monitor.gc_hold import GcHold
from slurm_monitor.interest import Interest, InterestConfig
from slurm_monitor.loop import install_stop_signals, run_streams
from slurm_monitor.monitor_io import _db
from slurm_monitor.monitor_nodes import NodeStreams
from slurm_monitor.reminders import Reminders
from slurm_monitor.sinks import Sink
from slurm_monitor.snapshot import Job, Node
from slurm_monitor.source import Source
from slurm_monitor.tiers import FULL_EVERY, JobTiers

__all__ = ["History", "Intervals", "Monitor", "install_stop_signals"]

logger = logging.getLogger("slurm_monitor")


@dataclass(frozen=True)
class Intervals:
    jobs: float = 5.0
    nodes: float = 10.0
    metrics: float = 15.0


@dataclass(frozen=True)
class History:
    """Finished jobs: kept ``days`` (purged ``purge_per_step`` at a time), ``sacct`` asked about
    at most ``sacct_batch`` of them per step (0: never) and about each at most ``sacct_tries``
    times (accounting may lag; a job it never knows is given up). After a restart, the jobs
    that ended unseen while the monitor was down (``gap``): the last ``gap_hours`` of the gap,
    at most ``gap_jobs`` of them reported."""

    days: float = 14.0
    interval: float = 30.0
    sacct_batch: int = 100
    sacct_tries: int = 3
    purge_per_step: int = 1000
    gap_hours: float = 24.0
    gap_jobs: int = 2000


class Monitor(NodeStreams):
    def __init__(self, collector: Source, sink: Sink, intervals: Intervals = Intervals(),
                 source: str = "slurm", persist: bool = True,
                 clock: Callable[[], float] = time.time, history: History = History(),
                 full_every: int = FULL_EVERY, reminders: Reminders | None = None,
                 interest: InterestConfig | None = None, cluster: str | None = None) -> None:
        """``cluster``: the name of the cluster it watches (None: the primary,
        settings.SLURM_MONITOR_CLUSTER); its events, rows and figures are that cluster's."""
        self.scope = scope(cluster)
        self.collector = collector
        self.sink = sink
        self.intervals = intervals
        self.source = source
        self.persist = persist
        self.clock = clock
        self.jobs: dict[str, Job] | None = None
        self.nodes: dict[str, Node] | None = None
        self.saved_jobs: dict[str, Job] | None = None
        self.saved_nodes: dict[str, Node] | None = None
        self.marks: dict[str, ResourceMark] = {}
        self.alerts: dict[str, ActiveAlert] = {}
        self.stats: Counter[str] = Counter()
        self.history = history
        self.history_due = 0.0  # monotonic time of the next history step
        self.gap: gap.Window | None = None  # after a restart: the downtime to ask sacct about, once
        self.last_ok: dict[str, float] = {}  # stream -> Unix time of its last successful poll
        self.tiers = JobTiers(collector, full_every, detail_first=True)
        self.cadence = {name: Cadence(getattr(intervals, name)) for name in ("jobs", "nodes", "metrics")}
        self.in_flight: set[str] = set()
        self.sdiag_due = 0.0  # monotonic time of the next sdiag; inf: the source has none
        self.busy: str | None = None  # why sdiag said the scheduler is busy, or None
        self.reminders = reminders or Reminders(fraction=0)  # node-down reminders; time-limit ones only when given
        self.figures = FigureCache()  # job counts per jobs snapshot, node figures per node (figures)
        self.interest = Interest(interest, clock)  # what open job pages watch (slurm_monitor.interest)

    # --- one poll of each stream --------------------------------------------------------------

    async def poll_jobs(self) -> int:
        """One jobs poll (``_poll_jobs``) unless one is still running; returns how many
        events/notifications were delivered."""
        self._jobs_idle().clear()  # the nodes and metrics streams wait (monitor_nodes._after_jobs)
        try:
            return await self._alone("jobs", self._poll_jobs)
        finally:
            if "jobs" not in self.in_flight:  # not when this call was refused: the running poll sets it
                self._jobs_idle().set()

    async def _poll_jobs(self) -> int:
        with GcHold() as window:  # from the listing until the events are out (gc_hold)
            return await self._poll_jobs_held(window)

    async def _poll_jobs_held(self, window: GcHold) -> int:
        started = time.monotonic()
        self._command_seconds("jobs", started)
        try:
            current, tier = await self.tiers.collect(listed=window.hold)
        except CollectError as exc:
            window.release()
            return await self._poll_failed("jobs", started, exc)
        sent, count = await self._apply_jobs(current, window)
        if self.tiers.full_due:  # the detail's events are out: now the full JSON (tiers.JobTiers)
            try:
                current, tier = await self.tiers.collect_full()
            except CollectError as exc:
                self.stats["jobs_full_failed"] += 1
                logger.warning("jobs poll: the full JSON failed after the detail's events were sent; "
                               "the next poll tries again: %s", exc)
            else:
                more, more_count = await self._apply_jobs(current)
                sent, count = sent + more, count + more_count
        self.stats["jobs_polls"] += 1
        self.stats[f"jobs_polls_{tier}"] += 1
        seconds = self._command_seconds("jobs", started)
        await self._record_poll("jobs", seconds, True)
        await self._pace("jobs", True, seconds)
        await self._heartbeat("jobs", True)
        logger.info("jobs poll: %s tier, commands took %.2fs, %d jobs, %d/%d events sent (%.2fs total)",
                    tier, seconds, len(current), sent, count, time.monotonic() - started)
        if self.persist and time.monotonic() >= self.history_due:
            self.history_due = time.monotonic() + self.history.interval
            await self.history_step()
        sent += await self.interest.step(self)
        return sent

    async def _apply_jobs(self, current: dict[str, Job], window: GcHold | None = None) -> tuple[int, int]:
        """Diff ``current`` against the last snapshot, deliver, then save it with the positions
        its events got; returns (delivered, events and notifications). ``window`` is released
        once the events are out, before the save."""
        changes = diff_jobs(self.jobs, current, self.tiers.touched_ids(self.jobs, current))
        changes = await self.reminders.jobs(changes, self.jobs, current, self.clock())
        self.jobs = current
        offsets: dict[str, int] = {}
        sent = await self.deliver(changes, "jobs", offsets)
        if window is not None:
            window.release()
        await self._save("jobs", store.save_jobs, current, await self._positions(offsets))
        return sent, len(changes)

    async def load_baseline(self) -> None:
        """Diff the first poll against what the previous run saved, active alerts included
        (used by --once, so a cron-driven monitor reports each change once)."""
        self.jobs = self.saved_jobs = await _db(store.load_jobs)(self.scope.column)
        self.nodes = self.saved_nodes = await _db(store.load_nodes)(self.scope.column)
        self.alerts = {}
        for data in await _db(store.load_alerts)(self.scope.column):
            try:
                raised_at = datetime.fromisoformat(data["raised_at"]).timestamp()
                self.alerts[data["alert_id"]] = ActiveAlert(data["alert_id"], raised_at,
                                                            float(data["value"]), data)
            except (KeyError, TypeError, ValueError):
                logger.warning("ignoring an unreadable saved alert: %r", data)

    async def run_once(self) -> None:
        await self.load_baseline()
        await self.poll_jobs()
        await self.poll_nodes()
        await self.publish_metrics()

    async def resume(self) -> None:
        """Start from what the previous run saved (``load_baseline``, as ``--once`` does), so
        the first poll reports every change missed while the monitor was down, each once:
        the saved state is what was last reported. Jobs that vanished meanwhile get
        ``job_removed`` from that poll and, through the history step right after it (due at
        once), their terminal event and notification from ``sacct``; jobs that came and went
        while it was down, unseen, from one ``sacct`` query for the gap (``gap``), in that same
        step. Without a database, or when reading it fails, the first poll is only a baseline
        (as before)."""
        if not self.persist:
            return
        try:
            await self.load_baseline()
            if self.history.sacct_batch > 0:  # 0: accounting is never asked
                self.gap = gap.window(await _db(gap.saved_at)(self.scope.column), time.time(), self.history.gap_hours,
                                      self.history.days)
        except Exception:
            logger.exception("loading the saved state failed: the first poll is only a baseline")
            self.jobs = self.nodes = self.saved_jobs = self.saved_nodes = None
            self.alerts = {}
            return
        logger.info("resuming from the saved state: %s jobs, %s nodes",
                    "no" if self.jobs is None else len(self.jobs),
                    "no" if self.nodes is None else len(self.nodes))

    async def run(self, stop: asyncio.Event) -> None:
        """Resume from the saved state, then poll until ``stop`` is set (``loop.run_streams``)."""
        await self.resume()
        await run_streams(self, stop)
