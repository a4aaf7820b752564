"""The nodes and metrics streams of ``Monitor`` (a part of it, as ``monitor_io``).

Both run on the event loop and the one database thread the jobs stream uses. At 10,000 nodes
x 100,000 jobs a nodes poll cost ~0.7 CPU s and a metrics publish ~1 s (bench/slurm_poll.py
``--nodes-every``), and a jobs poll that started meanwhile waited behind that work, its CPU
window and its events' latency stretched by it. Two things keep them out of its way:

- they are cheaper: the job-derived figures are counted once per jobs snapshot and the node
  figures kept per unchanged node (``figures.FigureCache``), unchanged nodes are neither
  diffed nor saved again (identity, ``diff.diff_nodes``, ``store.save_nodes``);
- they defer to a jobs poll (``_after_jobs``): before each stage that holds the loop or the
  database thread (parsing, diffing, the alert rules, saving) they wait until no jobs poll is
  in flight, bounded by one jobs interval so a jobs stream that never rests cannot starve them.
  Chosen over yielding inside the stages (``sleep(0)`` every N records): a jobs poll that gets
  the loop between chunks still shares its window with the rest of the nodes work; and over
  a worker thread: pure Python holds the GIL, so a thread would interleave with the jobs poll
  just the same (and the nodes dicts would be shared across threads).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from types import MappingProxyType
from typing import Any, Mapping

from slurm_monitor import store
from slurm_monitor.alerting import evaluate_and_record
from slurm_monitor.alerts import ActiveAlert, evaluate_alerts
from slurm_monitor.collector import CollectError
from slurm_monitor.diff import Changes, ResourceMark, diff_nodes
from slurm_monitor.events import Publication, build_metrics_update, iso
from slurm_monitor.exporter import save_gauges
from slurm_monitor.figures import FigureCache
from slurm_monitor.metrics import compute_metrics, gauge_figures
from slurm_monitor.monitor_io import MonitorIO, _db, _save_positions_only
from slurm_monitor.reminders import Reminders
from slurm_monitor.snapshot import Job, Node

logger = logging.getLogger("slurm_monitor")

NO_JOBS: Mapping[str, Job] = MappingProxyType({})  # before the first jobs poll: one object, counted once


class NodeStreams(MonitorIO):
    """Mixed into ``Monitor``, whose ``__init__`` sets these."""

    jobs: dict[str, Job] | None
    nodes: dict[str, Node] | None
    marks: dict[str, ResourceMark]
    alerts: dict[str, ActiveAlert]
    reminders: Reminders
    figures: FigureCache
    intervals: Any  # monitor.Intervals
    _idle: asyncio.Event | None = None  # made on first use, in the running loop (``_jobs_idle``)
    _idle_loop: asyncio.AbstractEventLoop | None = None

    async def _after_jobs(self) -> None:
        """Return when no jobs poll is in flight, or after one jobs interval at most."""
        if "jobs" not in self.in_flight:
            return
        self.stats["deferred_to_jobs"] += 1
        try:
            await asyncio.wait_for(self._jobs_idle().wait(), self.intervals.jobs)
        except asyncio.TimeoutError:
            self.stats["deferred_too_long"] += 1

    def _jobs_idle(self) -> asyncio.Event:
        """Set while no jobs poll runs (cleared and set by ``Monitor.poll_jobs``); one per loop."""
        loop = asyncio.get_running_loop()
        if self._idle is None or self._idle_loop is not loop:
            self._idle, self._idle_loop = asyncio.Event(), loop
            if "jobs" not in self.in_flight:
                self._idle.set()
        return self._idle

    def _jobs_snapshot(self) -> Mapping[str, Job]:
        return self.jobs if self.jobs is not None else NO_JOBS

    async def poll_nodes(self) -> int:
        """One nodes poll (``_poll_nodes``) unless one is still running."""
        return await self._alone("nodes", self._poll_nodes)

    async def _poll_nodes(self) -> int:
        await self._after_jobs()
        started = time.monotonic()
        self._command_seconds("nodes", started)
        try:
            current = await self.collector.collect_nodes()
        except CollectError as exc:
            return await self._poll_failed("nodes", started, exc)
        await self._after_jobs()  # a jobs poll may have started while the command ran
        changes, self.marks = diff_nodes(self.nodes, current, self.marks)
        changes = self.reminders.nodes(changes, self.nodes, current, self.jobs, self.clock())
        self.nodes = current
        self.figures.forget_nodes(current)
        await self._after_jobs()
        alert_events = await self._evaluate_alerts(current)
        changes = Changes(changes.publications + alert_events, changes.notifications)
        offsets: dict[str, int] = {}
        sent = await self.deliver(changes, "nodes", offsets)
        positions = await self._positions(offsets)
        await self._after_jobs()
        await self._save("nodes", store.save_nodes, current,
                         {c: p for c, p in positions.items() if c != "alerts"})
        if "alerts" in positions:
            # The alert rows were stored by _evaluate_alerts before publishing; their position
            # follows once the offset is known (a reader in between replays one alert event).
            await self._write("alerts", _save_positions_only, None, {"alerts": positions["alerts"]})
        self.stats["nodes_polls"] += 1
        command = self.collector.last_run.get("nodes", ("nodes", 0.0))[0]
        seconds = self._command_seconds("nodes", started)
        await self._record_poll("nodes", seconds, True)
        await self._pace("nodes", True, seconds)
        await self._heartbeat("nodes", True)
        logger.info("nodes poll: %s took %.2fs, %d nodes, %d/%d events sent (%.2fs total)",
                    command, seconds, len(current), sent, len(changes), time.monotonic() - started)
        return sent

    async def publish_metrics(self) -> int:
        if self.nodes is None:
            logger.info("metrics: no node snapshot yet, nothing sent")
            await self._heartbeat("metrics", False)
            return 0
        await self._after_jobs()
        now = self.clock()
        self.last_ok["metrics"] = now
        jobs, nodes = self._jobs_snapshot(), self.nodes
        counts = self.figures.counts(jobs)
        publication = build_metrics_update(compute_metrics(jobs, nodes, counts, self.figures.node), now)
        publication = dataclasses.replace(publication, data={**publication.data, "streams": self.stream_fields()})
        offsets: dict[str, int] = {}
        sent = await self.deliver(Changes((publication,)), "metrics", offsets)
        await self._after_jobs()
        await self._write("metrics", store.save_metrics, publication.data, await self._positions(offsets))
        await self._write("gauges", save_gauges, gauge_figures(jobs, nodes, now, counts=counts))
        await self._heartbeat("metrics", True)
        self.stats["metrics_sent"] += sent
        return sent

    def stream_fields(self) -> dict[str, dict[str, Any]]:
        """``metrics_update``'s ``streams``: per stream, its current interval (seconds) and when it
        last polled successfully (``updated_at``, null before the first), so a page can tell
        stale data (3 intervals late) from a quiet cluster."""
        return {name: {"interval": self.cadence[name].interval,
                       "updated_at": iso(self.last_ok[name]) if name in self.last_ok else None}
                for name in ("jobs", "nodes", "metrics")}

    async def _evaluate_alerts(self, nodes: dict[str, Node]) -> tuple[Publication, ...]:
        """With a database: the AlertRule rows, each alert's lifecycle stored (and the
        ``alerts`` stream saved) by ``alerting.evaluate_and_record``. Without one: the
        built-in rules, in memory. A failed evaluation sends nothing; the next poll retries."""
        jobs = self._jobs_snapshot()
        counts = self.figures.counts(jobs)
        if not self.persist:
            self.alerts, events = evaluate_alerts(
                self.alerts, compute_metrics(jobs, nodes, counts, self.figures.node), self.clock())
            return events
        try:
            return tuple(await _db(evaluate_and_record)(jobs, nodes, self.clock(), self.source,
                                                        self.scope.column, counts.pending_by_partition))
        except Exception:
            logger.exception("evaluating the alert rules failed")
            return ()
