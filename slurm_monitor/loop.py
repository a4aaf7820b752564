"""Running the monitor: one task per stream, each waiting its stream's current cadence.

Each stream's loop awaits its poll before it waits again, so one poll per stream is in flight
from the loop; ``Monitor.poll_jobs``/``poll_nodes`` also refuse to start while one runs
(``Monitor.in_flight``), whoever calls them. The wait is the stream's ``Cadence.interval``
minus the poll's own time (``cadence``: stretched when Slurm is slow, failing or busy).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import TYPE_CHECKING, Awaitable, Callable

if TYPE_CHECKING:
    from slurm_monitor.monitor import Monitor

logger = logging.getLogger("slurm_monitor")


async def run_streams(monitor: "Monitor", stop: asyncio.Event) -> None:
    """Poll every stream until ``stop`` is set; in-flight commands are killed on stop."""
    intervals = monitor.intervals
    logger.info("monitor started: jobs every %gs, nodes every %gs, metrics every %gs, full job detail "
                "every %d jobs polls, sink %s, source %s", intervals.jobs, intervals.nodes, intervals.metrics,
                monitor.tiers.full_every, monitor.sink.name, monitor.source)
    tasks = [
        asyncio.create_task(stream_loop(monitor, "jobs", monitor.poll_jobs, stop)),
        asyncio.create_task(stream_loop(monitor, "nodes", monitor.poll_nodes, stop)),
        asyncio.create_task(stream_loop(monitor, "metrics", monitor.publish_metrics, stop,
                                        first_delay=min(1.0, intervals.metrics))),
    ]
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    logger.info("monitor stopped: %s", dict(monitor.stats))


async def stream_loop(monitor: "Monitor", name: str, poll: Callable[[], Awaitable[int]],
                      stop: asyncio.Event, first_delay: float = 0.0) -> None:
    if first_delay and await stopped(stop, first_delay):
        return
    while not stop.is_set():
        started = time.monotonic()
        try:
            await poll()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("%s poll crashed; the monitor goes on", name)
        interval = monitor.cadence[name].interval
        if await stopped(stop, max(0.0, interval - (time.monotonic() - started))):
            return


async def stopped(stop: asyncio.Event, delay: float) -> bool:
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
