"""The loop: collect -> diff -> publish, per stream, and never die on one bad poll.

Three streams run side by side, each on its own interval: jobs (``squeue``), nodes (node
command, then alerts) and metrics (computed from the two latest snapshots: no Slurm command of
its own). A poll that fails (command failed, timed out, broken output) sends nothing and keeps
the last good snapshot, so the next good poll is diffed against it: no event is lost or
repeated. Anything unexpected in a poll is logged with its traceback and the loop goes on.

The number of Slurm commands depends only on the intervals: one poll serves every viewer,
through the hub. A run starts from the state the previous one saved (``resume``), so its
first poll reports what changed meanwhile. The latest state is saved for REST (``store``)
after delivering events, with the offsets (and epochs) those events got, in one transaction:
a REST reader's ``position`` then matches its rows exactly. After a jobs poll, at most once
per ``History.interval`` (and right after the first), the history step purges old finished
jobs and asks ``sacct`` (one batched call) about the jobs that ended; a job that left
``squeue`` before it was seen ending gets its terminal event and notification from there.

Every poll of every stream ends with a heartbeat (``store.record_heartbeat``: ok or not, and
the stream's interval), whether or not anything changed, so /api/health, /metrics and the
dashboard can tell a quiet cluster from a dead monitor. ``metrics_update`` carries each
stream's last successful poll (``streams``) for pages, which see no database.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable

from asgiref.sync import sync_to_async
from django.db import close_old_connections

from slurm_monitor import store
from slurm_monitor.alerting import evaluate_and_record
from slurm_monitor.alerts import ActiveAlert, evaluate_alerts
from slurm_monitor.collector import CollectError, SlurmCollector
from slurm_monitor.diff import Changes, ResourceMark, diff_jobs, diff_nodes
from slurm_monitor.events import (
    Publication,
    build_job_notification,
    build_job_removed,
    build_job_state_changed,
    build_metrics_update,
    iso,
)
from slurm_monitor.exporter import save_gauges
from slurm_monitor.metrics import compute_metrics, gauge_figures
from slurm_monitor.sinks import Sink
from slurm_monitor.sacct import SACCT_MAX_IDS
from slurm_monitor.snapshot import Job, Node

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
    times (accounting may lag; a job it never knows is given up)."""

    days: float = 14.0
    interval: float = 30.0
    sacct_batch: int = 100
    sacct_tries: int = 3
    purge_per_step: int = 1000


def _save_positions_only(_data: Any, _source: str, positions) -> None:
    store.save_positions(positions)


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
                 clock: Callable[[], float] = time.time, history: History = History()) -> None:
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
        self.last_ok: dict[str, float] = {}  # stream -> Unix time of its last successful poll

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
            await self._heartbeat("jobs", False)
            return 0
        changes = diff_jobs(self.jobs, current)
        self.jobs = current
        offsets: dict[str, int] = {}
        sent = await self.deliver(changes, "jobs", offsets)
        await self._save("jobs", store.save_jobs, current, await self._positions(offsets))
        self.stats["jobs_polls"] += 1
        command, seconds = self.collector.last_run.get("jobs", ("squeue", 0.0))
        await self._record_poll("jobs", seconds, True)
        await self._heartbeat("jobs", True)
        logger.info("jobs poll: %s took %.2fs, %d jobs, %d/%d events sent (%.2fs total)",
                    command, seconds, len(current), sent, len(changes), time.monotonic() - started)
        if self.persist and time.monotonic() >= self.history_due:
            self.history_due = time.monotonic() + self.history.interval
            await self.history_step()
        return sent

    async def history_step(self) -> tuple[int, int]:
        """Purge finished jobs older than ``History.days`` (bounded), then one ``sacct`` call
        for the ended jobs without accounting (bounded). Returns (purged, accounted); a
        failure is logged and the jobs poll goes on."""
        from slurm_monitor import history

        now = datetime.now(timezone.utc)
        purged = accounted = 0
        try:
            purged = await _db(history.purge)(now - timedelta(days=self.history.days),
                                              self.history.purge_per_step)
            batch = min(self.history.sacct_batch, SACCT_MAX_IDS)
            ids = await _db(history.needing_accounting)(batch, self.history.sacct_tries) if batch > 0 else []
            if ids:
                try:
                    answers = await self.collector.collect_accounting(ids)
                except CollectError as exc:  # no accounting (or no slurmdbd): say so once, loudly
                    level = logging.INFO if self.stats["sacct_failed"] else logging.WARNING
                    self.stats["sacct_failed"] += 1
                    logger.log(level, "sacct for %d ended jobs failed: %s", len(ids), exc)
                    answers = {}
                found = {job_id: a.as_dict() for job_id, a in answers.items()}
                positions = await self._publish_endings(await _db(history.endings)(found))
                accounted = await _db(history.save_accounting)(ids, found, now, positions)
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

    async def poll_nodes(self) -> int:
        started = time.monotonic()
        try:
            current = await self.collector.collect_nodes()
        except CollectError as exc:
            self.stats["nodes_failed"] += 1
            logger.warning("nodes poll failed after %.2fs, nothing sent: %s", time.monotonic() - started, exc)
            await self._record_poll("nodes", time.monotonic() - started, False)
            await self._heartbeat("nodes", False)
            return 0
        changes, self.marks = diff_nodes(self.nodes, current, self.marks)
        self.nodes = current
        alert_events = await self._evaluate_alerts(current)
        changes = Changes(changes.publications + alert_events, changes.notifications)
        offsets: dict[str, int] = {}
        sent = await self.deliver(changes, "nodes", offsets)
        positions = await self._positions(offsets)
        await self._save("nodes", store.save_nodes, current,
                         {c: p for c, p in positions.items() if c != "alerts"})
        if "alerts" in positions:
            # The alert rows were stored by _evaluate_alerts before publishing; their position
            # follows once the offset is known (a reader in between replays one alert event).
            await self._write("alerts", _save_positions_only, None, {"alerts": positions["alerts"]})
        self.stats["nodes_polls"] += 1
        command, seconds = self.collector.last_run.get("nodes", ("nodes", 0.0))
        await self._record_poll("nodes", seconds, True)
        await self._heartbeat("nodes", True)
        logger.info("nodes poll: %s took %.2fs, %d nodes, %d/%d events sent (%.2fs total)",
                    command, seconds, len(current), sent, len(changes), time.monotonic() - started)
        return sent

    async def publish_metrics(self) -> int:
        if self.nodes is None:
            logger.info("metrics: no node snapshot yet, nothing sent")
            await self._heartbeat("metrics", False)
            return 0
        now = self.clock()
        self.last_ok["metrics"] = now
        publication = build_metrics_update(compute_metrics(self.jobs or {}, self.nodes), now)
        publication = dataclasses.replace(publication, data={**publication.data, "streams": self.stream_fields()})
        offsets: dict[str, int] = {}
        sent = await self.deliver(Changes((publication,)), "metrics", offsets)
        await self._write("metrics", store.save_metrics, publication.data, await self._positions(offsets))
        await self._write("gauges", save_gauges, gauge_figures(self.jobs or {}, self.nodes, now))
        await self._heartbeat("metrics", True)
        self.stats["metrics_sent"] += sent
        return sent

    def stream_fields(self) -> dict[str, dict[str, Any]]:
        """``metrics_update``'s ``streams``: per stream, its interval (seconds) and when it
        last polled successfully (``updated_at``, null before the first), so a page can tell
        stale data (3 intervals late) from a quiet cluster."""
        return {name: {"interval": getattr(self.intervals, name),
                       "updated_at": iso(self.last_ok[name]) if name in self.last_ok else None}
                for name in ("jobs", "nodes", "metrics")}

    async def _evaluate_alerts(self, nodes: dict[str, Node]) -> tuple[Publication, ...]:
        """With a database: the AlertRule rows, each alert's lifecycle stored (and the
        ``alerts`` stream saved) by ``alerting.evaluate_and_record``. Without one: the
        built-in rules, in memory. A failed evaluation sends nothing; the next poll retries."""
        if not self.persist:
            self.alerts, events = evaluate_alerts(self.alerts, compute_metrics(self.jobs or {}, nodes), self.clock())
            return events
        try:
            return tuple(await _db(evaluate_and_record)(self.jobs or {}, nodes, self.clock(), self.source))
        except Exception:
            logger.exception("evaluating the alert rules failed")
            return ()

    async def deliver(self, changes: Changes, stream: str, offsets: dict[str, int] | None = None) -> int:
        """Publish every event (and to its job owner) in one batch, then every notification
        (``Sink.deliver``). Returns how many went out; failures are counted and the first
        is logged. ``offsets`` collects the last offset each channel's publications got
        (``user:<name>`` for the owner's copy): the positions saved with the rows."""
        sent, failures, first_error = await self.sink.deliver(changes.publications, changes.notifications,
                                                              offsets)
        if failures:
            self.stats["delivery_failures"] += failures
            logger.warning("%s: %d of %d events not delivered; first: %s",
                           stream, failures, len(changes), first_error)
        self.stats["events_sent"] += sent
        return sent

    async def _positions(self, offsets: dict[str, int]) -> dict[str, tuple[int, str | None]]:
        """{channel: (offset, epoch)} for what ``deliver`` collected."""
        if not offsets:
            return {}
        try:
            epochs = await self.sink.epochs_for(offsets)
        except Exception:
            logger.exception("reading the epochs of %s failed", sorted(offsets))
            epochs = {}
        return {channel: (offset, epochs.get(channel)) for channel, offset in offsets.items()}

    async def _write(self, what: str, save: Callable[..., None], data: Any,
                     positions: dict[str, tuple[int, str | None]] | None = None) -> None:
        if not self.persist:
            return
        try:
            await _db(save)(data, self.source, positions)
        except Exception:
            logger.exception("saving the latest %s failed", what)

    async def _record_poll(self, stream: str, seconds: float, ok: bool) -> None:
        """Poll figures for the hub's /metrics (``hub.ops.metrics.record_poll``), when present."""
        if not self.persist:
            return
        try:
            from hub.ops.metrics import record_poll
        except ImportError:
            return
        try:
            await _db(record_poll)(stream, seconds, ok)
        except Exception:
            logger.exception("recording the %s poll's figures failed", stream)

    async def _heartbeat(self, stream: str, ok: bool) -> None:
        """The end of one poll of ``stream``. Never raises: a heartbeat must not break a poll."""
        if ok:
            self.last_ok[stream] = self.clock()
        if not self.persist:
            return
        try:
            await _db(store.record_heartbeat)(stream, ok, getattr(self.intervals, stream), self.source)
        except Exception:
            logger.exception("recording the %s heartbeat failed", stream)

    async def _save(self, stream: str, save: Callable[..., None], current: dict,
                    positions: dict[str, tuple[int, str | None]] | None = None) -> None:
        if not self.persist:
            return
        attr = f"saved_{stream}"
        try:
            await _db(save)(getattr(self, attr), current, self.source, positions)
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

    async def resume(self) -> None:
        """Start from what the previous run saved (``load_baseline``, as ``--once`` does), so
        the first poll reports every change missed while the monitor was down, each once:
        the saved state is what was last reported. Jobs that vanished meanwhile get
        ``job_removed`` from that poll and, through the history step right after it (due at
        once), their terminal event and notification from ``sacct``. Without a database, or
        when reading it fails, the first poll is only a baseline (as before)."""
        if not self.persist:
            return
        try:
            await self.load_baseline()
        except Exception:
            logger.exception("loading the saved state failed: the first poll is only a baseline")
            self.jobs = self.nodes = self.saved_jobs = self.saved_nodes = None
            self.alerts = {}
            return
        logger.info("resuming from the saved state: %s jobs, %s nodes",
                    "no" if self.jobs is None else len(self.jobs),
                    "no" if self.nodes is None else len(self.nodes))

    async def run(self, stop: asyncio.Event) -> None:
        """Resume from the saved state, then poll until ``stop`` is set; in-flight commands
        are killed on stop."""
        await self.resume()
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
