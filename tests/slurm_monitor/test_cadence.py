"""Scheduler-aware cadence: the interval stretches on slow or failing commands and a busy
sdiag, returns when they are quick; shown in the heartbeat rows, /metrics and admin; one poll
per stream in flight, ever."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from slurm_monitor import heartbeats
from slurm_monitor.cadence import Cadence
from slurm_monitor.collector import CommandResult, SlurmCollector
from slurm_monitor.mock_scale import ScaleCluster
from slurm_monitor.monitor import Intervals, Monitor
from tests.slurm_monitor.test_monitor import RecordingSink

pytestmark = pytest.mark.django_db(transaction=True)


class Slurm:
    """The simulator behind a runner whose commands report ``seconds`` and may fail; sdiag
    answers ``threads`` server threads."""

    def __init__(self) -> None:
        self.cluster = ScaleCluster(4, 40, seed=2)
        self.seconds = 0.01
        self.fail = False
        self.threads = 3
        self.gate: asyncio.Event | None = None
        self.running = 0
        self.most_running = 0
        self.squeues = 0

    async def __call__(self, argv, timeout):
        if argv[0] == "sdiag":
            text = f"Server thread count:  {self.threads}\nAgent queue size: 0\n"
            return CommandResult(tuple(argv), 0, text, "", 0.0)
        if argv[0] == "squeue":
            self.squeues += 1
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            try:
                if self.gate is not None:
                    await self.gate.wait()
            finally:
                self.running -= 1
            if self.fail:
                return CommandResult(tuple(argv), 1, "", "slurm_load_jobs error: Socket timed out", self.seconds)
        result = await self.cluster.run(argv, timeout)
        return CommandResult(result.argv, result.returncode, result.stdout, result.stderr, self.seconds)


def make(slurm: Slurm, persist: bool = False) -> Monitor:
    collector = SlurmCollector(runner=slurm, state_tier=True, sdiag=True)
    return Monitor(collector, RecordingSink(), Intervals(jobs=5, nodes=10, metrics=15), source="test",
                   persist=persist)


def test_cadence_rules():
    cadence = Cadence(5.0)
    assert not cadence.after_poll(True, 0.1) and (cadence.interval, cadence.reason) == (5.0, "normal")
    assert cadence.after_poll(True, 4.0) and (cadence.interval, cadence.reason) == (16.0, "slow")
    assert cadence.after_poll(False, 20.0) and (cadence.interval, cadence.reason) == (32.0, "failing")
    for _ in range(5):
        cadence.after_poll(False, 20.0)
    assert cadence.interval == 60.0  # at most 12 x 5 s
    cadence.after_poll(True, 0.1, busy="sdiag: 40 server threads")
    assert (cadence.interval, cadence.reason) == (60.0, "busy")
    cadence.after_poll(True, 0.1)
    assert (cadence.interval, cadence.reason) == (30.0, "recovering")
    for _ in range(3):
        cadence.after_poll(True, 0.1)
    assert (cadence.interval, cadence.reason) == (5.0, "normal")


async def test_slow_then_failing_commands_stretch_the_jobs_interval_and_it_returns():
    slurm = Slurm()
    monitor = make(slurm)
    await monitor.poll_jobs()
    assert monitor.cadence["jobs"].interval == 5.0
    slurm.seconds = 2.5  # the state tier alone takes half the interval: slurmctld is struggling
    await monitor.poll_jobs()
    assert monitor.cadence["jobs"].reason == "slow" and monitor.cadence["jobs"].interval >= 10.0
    slurm.fail = True
    await monitor.poll_jobs()
    assert monitor.cadence["jobs"].reason == "failing" and monitor.cadence["jobs"].interval >= 20.0
    slurm.fail, slurm.seconds = False, 0.01
    for _ in range(4):
        await monitor.poll_jobs()
    assert (monitor.cadence["jobs"].interval, monitor.cadence["jobs"].reason) == (5.0, "normal")


async def test_a_busy_scheduler_in_sdiag_stretches_the_interval():
    slurm = Slurm()
    slurm.threads = 50
    monitor = make(slurm)
    await monitor.poll_jobs()
    assert monitor.cadence["jobs"].reason == "busy" and monitor.cadence["jobs"].interval == 10.0
    assert monitor.cadence["nodes"].interval == 10.0  # nodes: not polled yet


async def test_one_poll_per_stream_in_flight_ever():
    slurm = Slurm()
    monitor = make(slurm)
    await monitor.poll_jobs()
    slurm.gate = asyncio.Event()
    first = asyncio.create_task(monitor.poll_jobs())
    while slurm.running == 0:
        await asyncio.sleep(0)
    assert await monitor.poll_jobs() == 0  # refused at once while the first is in flight
    assert await monitor.poll_jobs() == 0
    slurm.gate.set()
    await first
    assert slurm.most_running == 1 and monitor.stats["jobs_skipped"] == 2


async def test_the_running_loop_never_overlaps_polls_of_a_stream():
    """Commands slower than the interval: the loop waits for each poll, never starts another."""
    slurm = Slurm()
    monitor = Monitor(SlurmCollector(runner=slurm, state_tier=True), RecordingSink(),
                      Intervals(jobs=0.05, nodes=0.05, metrics=0.05), source="test", persist=False)
    slurm.gate = asyncio.Event()
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(stop))
    for _ in range(5):
        while slurm.running == 0:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # two intervals pass with the command still running
        assert slurm.running == 1
        slurm.gate.set()
        slurm.gate = asyncio.Event()
    stop.set()
    slurm.gate.set()
    await task
    assert slurm.most_running == 1 and slurm.squeues >= 5


async def test_cadence_and_reason_in_heartbeat_metrics_and_admin(admin_client):
    slurm = Slurm()
    monitor = make(slurm, persist=True)
    slurm.seconds = 3.0
    await monitor.poll_jobs()  # the first poll is a full cycle: state tier + JSON, 6 s
    beat = {b.stream: b for b in await sync_to_async(heartbeats.load_heartbeats)()}["jobs"]
    assert (beat.reason, beat.base_interval) == ("slow", 5.0) and beat.interval == 24.0

    def pages():
        return (admin_client.get("/admin/slurm_monitor/clusterstream/").content.decode(),
                admin_client.get("/metrics").content.decode())

    admin, metrics = await sync_to_async(pages)()
    assert "slow: commands took 6.0s" in admin and "24.0" in admin
    assert 'hub_slurm_stream_cadence{cluster="default",reason="slow",stream="jobs"} 1.0' in metrics
    assert 'hub_slurm_stream_base_interval_seconds{cluster="default",stream="jobs"} 5.0' in metrics
    assert 'hub_slurm_stream_interval_seconds{cluster="default",stream="jobs"} 24.0' in metrics
