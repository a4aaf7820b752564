"""Interest-driven polling against the simulated cluster (``--mock``): it answers ``squeue
--start``, ``sstat`` and ``sacct`` like Slurm, so a demo shows start estimates, live efficiency
and the occasional low-usage note."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from asgiref.sync import sync_to_async

from slurm_monitor.collector import SlurmCollector
from slurm_monitor.interest import InterestConfig
from slurm_monitor.mock import MockCluster
from slurm_monitor.monitor import History, Monitor
from tests.slurm_monitor.test_interest import watchers
from tests.slurm_monitor.test_monitor import RecordingSink

pytestmark = pytest.mark.django_db(transaction=True)


class Clock:
    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


class Counting:
    """The simulator as the collector's runner, counting each command line's first words."""

    def __init__(self, cluster: MockCluster) -> None:
        self.cluster = cluster
        self.calls: Counter[str] = Counter()

    async def __call__(self, argv, timeout):
        self.calls[" ".join(argv[:2])] += 1
        return await self.cluster.run(argv, timeout)


async def test_the_simulator_answers_watched_jobs_and_notes_low_usage_once():
    clock = Clock()
    cluster = MockCluster(seed=7, clock=clock)
    runner = Counting(cluster)
    sink = RecordingSink()
    monitor = Monitor(SlurmCollector(runner=runner, timeout=5), sink, clock=clock,
                      history=History(interval=0), interest=InterestConfig(interval=0))
    await monitor.poll_jobs()
    pending = [j for j in monitor.jobs.values() if j.state == "PENDING"]
    running = [j for j in monitor.jobs.values() if j.state == "RUNNING"]
    assert pending and running
    for n, job in enumerate(pending[:2] + running[:3]):
        await sync_to_async(watchers)(5, job.job_id, prefix=f"p{n}-")
    clock.now += 5
    await monitor.poll_jobs()
    assert runner.calls["squeue --start"] == 1 and runner.calls["sstat --allsteps"] == 1
    heard = {key for target, event, key in sink.sent if event == "job_progress" and target == "jobs"}
    assert {j.job_id for j in running[:3]} <= heard  # live efficiency for every watched running job

    for _ in range(300):  # simulated time passes until some job ended using little
        if monitor.stats["low_usage_notes"]:
            break
        clock.now += 5
        await monitor.poll_jobs()
    notes = [n for n in sink.notes if n.type == "job_low_usage"]
    assert notes, monitor.stats
    for _ in range(3):
        clock.now += 5
        await monitor.poll_jobs()
    noted = Counter(n.data["job_id"] for n in sink.notes if n.type == "job_low_usage")
    assert set(noted.values()) == {1}  # each job once
    note = notes[0]
    assert note.user in ("alice", "bob", "carol", "dave")
    assert (note.data["memory_percent"] or 100) < 25 or (note.data["cpu_percent"] or 100) < 25
