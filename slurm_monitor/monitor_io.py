"""The monitor's plumbing (a part of ``Monitor``): delivering events, saving the latest state
with its positions, heartbeats and poll figures, and pacing each stream (one poll in flight,
the cadence after each poll)."""

from __future__ import annotations

import functools
import logging
import time
from typing import Any, Awaitable, Callable

from asgiref.sync import sync_to_async
from django.db import close_old_connections

from slurm_monitor import heartbeats, store
from slurm_monitor.cadence import SDIAG_EVERY, Cadence, busy_detail
from slurm_monitor.cluster_scope import Scope
from slurm_monitor.collector import CollectError
from slurm_monitor.diff import Changes
from slurm_monitor.history_step import HistorySteps
from slurm_monitor.sinks import Sink

logger = logging.getLogger("slurm_monitor")

def _save_positions_only(_data: Any, _source: str, positions, cluster: str = "") -> None:
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


class MonitorIO(HistorySteps):
    """Mixed into ``Monitor``, whose ``__init__`` sets these."""

    sink: Sink
    persist: bool
    source: str
    clock: Callable[[], float]
    cadence: dict[str, Cadence]
    in_flight: set[str]
    sdiag_due: float
    busy: str | None
    last_ok: dict[str, float]
    scope: Scope  # the cluster this monitor watches (cluster_scope)

    async def _alone(self, stream: str, poll: Callable[[], Awaitable[int]]) -> int:
        """One poll per stream in flight, whoever calls: a second caller gets 0 at once."""
        if stream in self.in_flight:
            self.stats[f"{stream}_skipped"] += 1
            logger.warning("%s poll still running: this one is skipped", stream)
            return 0
        self.in_flight.add(stream)
        try:
            return await poll()
        finally:
            self.in_flight.discard(stream)

    def _command_seconds(self, stream: str, started: float) -> float:
        """What this poll's commands took (a source without the figure: the poll's time)."""
        spent = getattr(self.collector, "stream_seconds", None)
        return spent.pop(stream, 0.0) if spent is not None else time.monotonic() - started

    async def _pace(self, stream: str, ok: bool, seconds: float) -> None:
        """Update the stream's cadence after a poll (``sdiag`` first, at most every
        ``SDIAG_EVERY`` s, where the source has it); log when it changes."""
        if stream == "jobs" and time.monotonic() >= self.sdiag_due:
            self.sdiag_due = time.monotonic() + SDIAG_EVERY
            ask = getattr(self.collector, "collect_sdiag", None)
            try:
                figures = await ask() if ask is not None else None
            except CollectError as exc:  # not installed or not allowed: command times only
                logger.info("sdiag unavailable (%s): cadence follows command times only", exc)
                figures = None
            self.busy = busy_detail(figures) if figures is not None else None
            if figures is None:
                self.sdiag_due = float("inf")
        cadence = self.cadence[stream]
        if cadence.after_poll(ok, seconds, self.busy if stream != "metrics" else None):
            level = logging.INFO if cadence.reason in ("normal", "recovering") else logging.WARNING
            logger.log(level, "cadence %s: every %gs (%s: %s)", stream, cadence.interval, cadence.reason,
                       cadence.detail)

    async def deliver(self, changes: Changes, stream: str, offsets: dict[str, int] | None = None) -> int:
        """Publish every event (and to its job owner) in one batch, then every notification
        (``Sink.deliver``). Returns how many went out; failures are counted and the first
        is logged. ``offsets`` collects the last offset each channel's publications got
        (``user:<name>`` for the owner's copy): the positions saved with the rows. The one
        road of every event and notification to the sink: here they are stamped with the
        cluster (``Scope.stamp``), so offsets are those of the real channels (``jobs.b``)."""
        changes = self.scope.stamp(changes)
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
            await _db(functools.partial(save, cluster=self.scope.column))(data, self.source, positions)
        except Exception:
            logger.exception("saving the latest %s failed", what)

    async def _poll_failed(self, stream: str, started: float, exc: Exception) -> int:
        """A poll of ``stream`` whose command failed: counted, logged, recorded, paced (the
        cadence stretches) and heartbeaten; nothing was sent, so it returns 0."""
        self.stats[f"{stream}_failed"] += 1
        logger.warning("%s poll failed after %.2fs, nothing sent: %s", stream, time.monotonic() - started, exc)
        await self._record_poll(stream, time.monotonic() - started, False)
        await self._pace(stream, False, self._command_seconds(stream, started))
        await self._heartbeat(stream, False)
        return 0

    async def _record_poll(self, stream: str, seconds: float, ok: bool) -> None:
        """Poll figures for the hub's /metrics (``hub.ops.metrics.record_poll``), when present."""
        if not self.persist:
            return
        try:
            from hub.ops.metrics import record_poll
        except ImportError:
            return
        try:
            await _db(record_poll)(stream, seconds, ok, self.scope.column)
        except Exception:
            logger.exception("recording the %s poll's figures failed", stream)

    async def _heartbeat(self, stream: str, ok: bool) -> None:
        """The end of one poll of ``stream``. Never raises: a heartbeat must not break a poll."""
        if ok:
            self.last_ok[stream] = self.clock()
        if not self.persist:
            return
        try:
            cadence = self.cadence[stream]
            await _db(heartbeats.record_heartbeat)(stream, ok, cadence.interval, self.source,
                                                   {"base_interval": cadence.base, "reason": cadence.reason,
                                                    "detail": cadence.detail}, self.scope.column)
        except Exception:
            logger.exception("recording the %s heartbeat failed", stream)

    async def _save(self, stream: str, save: Callable[..., None], current: dict,
                    positions: dict[str, tuple[int, str | None]] | None = None) -> None:
        if not self.persist:
            return
        attr = f"saved_{stream}"
        try:
            await _db(functools.partial(save, cluster=self.scope.column))(getattr(self, attr), current,
                                                                          self.source, positions)
            setattr(self, attr, current)
        except Exception:
            setattr(self, attr, None)  # unknown: the next save rewrites everything
            logger.exception("%s: saving the latest state failed", stream)

    # --- running --------------------------------------------------------------------------------

