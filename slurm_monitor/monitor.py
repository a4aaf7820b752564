"""The loop: collect -> diff -> publish, per stream, and never die on one bad poll.

Three streams run side by side, each on its own interval: jobs (``squeue``), nodes (node
command, then alerts) and metrics (computed from the two latest snapshots: no Slurm command of
its own). A poll that fails (command failed, timed out, broken output) sends nothing and keeps
the last good snapshot, so the next good poll is diffed against it: no event is lost or
repeated. Anything unexpected in a poll is logged with its traceback and the loop goes on.

The number of Slurm commands depends only on the intervals: one poll serves every viewer,
through the hub. The latest state is saved for REST (``store``) after delivering events.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Awaitable, Callable

from asgiref.sync import sync_to_async
from django.db import close_old_connections

from slurm_monitor import store
from slurm_monitor.alerts import ActiveAlert, evaluate_alerts
from slurm_monitor.collector import CollectError, SlurmCollector
from slurm_monitor.diff import Changes, ResourceMark, diff_jobs, diff_nodes
from slurm_monitor.events import build_metrics_update
from slurm_monitor.metrics import compute_metrics
from slurm_monitor.sinks import Sink
from slurm_monitor.snapshot import Job, Node

logger = logging.getLogger("slurm_monitor")


@dataclass(frozen=True)
class Intervals:
    jobs: float = 5.0
    nodes: float = 10.0
    metrics: float = 15.0


def _db(func: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """Run ORM work in asgiref's worker thread. A long-running process is outside Django's
    request cycle, so stale or broken connections are dropped here, around each call (and
    none is held between polls: PostgreSQL restarts and test databases can go away)."""

    def call(*args: Any) -> Any:
        close_old_connections()
        try:
            return func(*args)
        finally:
            close_old_connections()

    return sync_to_async(call, thread_sensitive=True)


class Monitor:
    def __init__(self, collector: SlurmCollector, sink: Sink, intervals: Intervals = Intervals(),
                 source: str = "slurm", persist: bool = True,
                 clock: Callable[[], float] = time.time) -> None:
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

    # --- one poll of each stream --------------------------------------------------------------

    async def poll_jobs(self) -> int:
        """One squeue poll; returns how many events/notifications were delivered."""
        started = time.monotonic()
        try:
            current = await self.collector.collect_jobs()
        except CollectError as exc:
            self.stats["jobs_failed"] += 1
            logger.warning("jobs poll failed after %.2fs, nothing sent: %s", time.monotonic() - started, exc)
            await self._record_poll("jobs", time.monotonic() - started, False)
            return 0
        changes = diff_jobs(self.jobs, current)
        self.jobs = current
        sent = await self.deliver(changes, "jobs")
        await self._save("jobs", store.save_jobs, current)
        self.stats["jobs_polls"] += 1
        command, seconds = self.collector.last_run.get("jobs", ("squeue", 0.0))
        await self._record_poll("jobs", seconds, True)
        logger.info("jobs poll: %s took %.2fs, %d jobs, %d/%d events sent (%.2fs total)",
                    command, seconds, len(current), sent, len(changes), time.monotonic() - started)
        return sent

    async def poll_nodes(self) -> int:
        started = time.monotonic()
        try:
            current = await self.collector.collect_nodes()
        except CollectError as exc:
            self.stats["nodes_failed"] += 1
            logger.warning("nodes poll failed after %.2fs, nothing sent: %s", time.monotonic() - started, exc)
            await self._record_poll("nodes", time.monotonic() - started, False)
            return 0
        first = self.nodes is None
        changes, self.marks = diff_nodes(self.nodes, current, self.marks)
        self.nodes = current
        self.alerts, alert_events = evaluate_alerts(
            self.alerts, compute_metrics(self.jobs or {}, current), self.clock())
        changes = Changes(changes.publications + alert_events, changes.notifications)
        sent = await self.deliver(changes, "nodes")
        await self._save("nodes", store.save_nodes, current)
        if alert_events or first:
            await self._write("alerts", store.save_alerts, [a.data for a in self.alerts.values()])
        self.stats["nodes_polls"] += 1
        command, seconds = self.collector.last_run.get("nodes", ("nodes", 0.0))
        await self._record_poll("nodes", seconds, True)
        logger.info("nodes poll: %s took %.2fs, %d nodes, %d/%d events sent (%.2fs total)",
                    command, seconds, len(current), sent, len(changes), time.monotonic() - started)
        return sent

    async def publish_metrics(self) -> int:
        if self.nodes is None:
            logger.info("metrics: no node snapshot yet, nothing sent")
            return 0
        publication = build_metrics_update(compute_metrics(self.jobs or {}, self.nodes), self.clock())
        sent = await self.deliver(Changes((publication,)), "metrics")
        await self._write("metrics", store.save_metrics, publication.data)
        self.stats["metrics_sent"] += sent
        return sent

    async def deliver(self, changes: Changes, stream: str) -> int:
        """Publish every event (and to its job owner) in one batch, then every notification
        (``Sink.deliver``). Returns how many went out; failures are counted and the first
        is logged."""
        sent, failures, first_error = await self.sink.deliver(changes.publications, changes.notifications)
        if failures:
            self.stats["delivery_failures"] += failures
            logger.warning("%s: %d of %d events not delivered; first: %s",
                           stream, failures, len(changes), first_error)
        self.stats["events_sent"] += sent
        return sent

    async def _write(self, what: str, save: Callable[..., None], data: Any) -> None:
        if not self.persist:
            return
        try:
            await _db(save)(data, self.source)
        except Exception:
            logger.exception("saving the latest %s failed", what)

    async def _record_poll(self, stream: str, seconds: float, ok: bool) -> None:
        """Poll figures for the hub's /metrics (``hub.metrics.record_poll``), when present."""
        if not self.persist:
            return
        try:
            from hub.metrics import record_poll
        except ImportError:
            return
        try:
            await _db(record_poll)(stream, seconds, ok)
        except Exception:
            logger.exception("recording the %s poll's figures failed", stream)

    async def _save(self, stream: str, save: Callable[..., None], current: dict) -> None:
        if not self.persist:
            return
        attr = f"saved_{stream}"
        try:
            await _db(save)(getattr(self, attr), current, self.source)
            setattr(self, attr, current)
        except Exception:
            setattr(self, attr, None)  # unknown: the next save rewrites everything
            logger.exception("%s: saving the latest state failed", stream)

    # --- running --------------------------------------------------------------------------------

    async def load_baseline(self) -> None:
        """Diff the first poll against what the previous run saved, active alerts included
        (used by --once, so a cron-driven monitor reports each change once)."""
        self.jobs = self.saved_jobs = await _db(store.load_jobs)()
        self.nodes = self.saved_nodes = await _db(store.load_nodes)()
        self.alerts = {}
        for data in (await _db(store.list_alerts)())["results"]:
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

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; in-flight commands are killed on stop."""
        logger.info("monitor started: jobs every %gs, nodes every %gs, metrics every %gs, sink %s, source %s",
                    self.intervals.jobs, self.intervals.nodes, self.intervals.metrics,
                    self.sink.name, self.source)
        tasks = [
            asyncio.create_task(self._loop("jobs", self.poll_jobs, self.intervals.jobs, stop)),
            asyncio.create_task(self._loop("nodes", self.poll_nodes, self.intervals.nodes, stop)),
            asyncio.create_task(self._loop("metrics", self.publish_metrics, self.intervals.metrics,
                                           stop, first_delay=min(1.0, self.intervals.metrics))),
        ]
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        logger.info("monitor stopped: %s", dict(self.stats))

    async def _loop(self, name: str, poll: Callable[[], Awaitable[int]], interval: float,
                    stop: asyncio.Event, first_delay: float = 0.0) -> None:
        if first_delay and await _stopped(stop, first_delay):
            return
        while not stop.is_set():
            started = time.monotonic()
            try:
                await poll()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s poll crashed; the monitor goes on", name)
            if await _stopped(stop, max(0.0, interval - (time.monotonic() - started))):
                return


async def _stopped(stop: asyncio.Event, delay: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), delay)
        return True
    except asyncio.TimeoutError:
        return False


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, sig, stop)


def _on_signal(sig: signal.Signals, stop: asyncio.Event) -> None:
    logger.info("received %s, stopping", signal.Signals(sig).name)
    stop.set()
