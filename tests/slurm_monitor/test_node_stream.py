"""The nodes and metrics streams at scale (issue 13): job-derived figures counted once per jobs
snapshot, node figures kept per unchanged node, and a nodes poll or metrics publish that waits
for the jobs poll in flight instead of sharing its time (slurm_monitor.monitor_nodes)."""

from __future__ import annotations

import asyncio
import json

from slurm_monitor.collector import CommandResult, SlurmCollector
from slurm_monitor.figures import FigureCache
from slurm_monitor.metrics import compute_metrics, gauge_figures, job_counts
from slurm_monitor.monitor import Monitor
from slurm_monitor.snapshot import parse_jobs, parse_nodes
from tests.slurm_monitor import shapes
from tests.slurm_monitor.test_monitor import PENDING, RecordingSink

RELEASE = "23.11"
JOBS = parse_jobs(json.dumps(shapes.squeue_doc(RELEASE, shapes.JOBS)))
NODES = parse_nodes(json.dumps(shapes.nodes_doc(RELEASE)))


class GatedSlurm:
    """squeue answers ``jobs`` once ``go`` is set (``asked`` tells it was asked); the node
    command answers ``nodes`` at once (``nodes_answered``)."""

    def __init__(self) -> None:
        self.jobs: list = []
        self.nodes = shapes.NODES
        self.go = asyncio.Event()
        self.asked = asyncio.Event()
        self.nodes_answered = asyncio.Event()

    async def __call__(self, argv, timeout):
        if argv[1:] == ["--version"]:
            return CommandResult(tuple(argv), 0, f"slurm {RELEASE}.0", "", 0.0)
        if argv[0] == "squeue":
            self.asked.set()
            await self.go.wait()
            return CommandResult(tuple(argv), 0, json.dumps(shapes.squeue_doc(RELEASE, self.jobs)), "", 0.0)
        self.nodes_answered.set()
        return CommandResult(tuple(argv), 0, json.dumps(shapes.nodes_doc(RELEASE, self.nodes)), "", 0.0)


class MetricsSink(RecordingSink):
    """Also keeps each ``metrics_update``'s payload."""

    def __init__(self) -> None:
        super().__init__()
        self.metrics: list[dict] = []

    async def publish(self, channel, event, data):
        if event == "metrics_update":
            self.metrics.append(data)
        return await super().publish(channel, event, data)


async def spin_until(condition, turns: int = 1000) -> None:
    """Let the other tasks run (no clock) until ``condition()`` or ``turns`` loop turns."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)


async def test_a_nodes_poll_waits_for_the_jobs_poll_in_flight():
    slurm, sink = GatedSlurm(), RecordingSink()
    monitor = Monitor(SlurmCollector(runner=slurm, timeout=5), sink, persist=False)
    slurm.go.set()
    await monitor.poll_jobs()  # baselines
    await monitor.poll_nodes()
    slurm.go.clear()
    slurm.asked.clear()
    slurm.jobs = PENDING
    slurm.nodes = shapes.with_changes(shapes.NODES, "name", "cn01", base="DOWN")
    jobs_poll = asyncio.create_task(monitor.poll_jobs())
    await slurm.asked.wait()  # the jobs poll is in flight, waiting for squeue
    nodes_poll = asyncio.create_task(monitor.poll_nodes())
    await slurm.nodes_answered.wait()
    await spin_until(lambda: nodes_poll.done() or monitor.stats["deferred_to_jobs"] > 0)
    await spin_until(lambda: nodes_poll.done(), turns=100)
    assert not nodes_poll.done() and sink.events("nodes") == []  # its answer is in, its work waits
    slurm.go.set()
    await asyncio.gather(jobs_poll, nodes_poll)
    channels = [channel for channel, _, _ in sink.sent if channel in ("jobs", "nodes")]
    assert channels == ["jobs", "nodes"]  # job_submitted, then node_state_changed
    assert monitor.stats["deferred_to_jobs"] >= 1


async def test_a_metrics_publish_waits_for_the_jobs_poll_in_flight():
    slurm, sink = GatedSlurm(), RecordingSink()
    monitor = Monitor(SlurmCollector(runner=slurm, timeout=5), sink, persist=False)
    slurm.go.set()
    await monitor.poll_jobs()
    await monitor.poll_nodes()
    slurm.go.clear()
    slurm.asked.clear()
    jobs_poll = asyncio.create_task(monitor.poll_jobs())
    await slurm.asked.wait()
    publish = asyncio.create_task(monitor.publish_metrics())
    await spin_until(lambda: publish.done(), turns=200)
    assert not publish.done() and sink.events("metrics") == []
    slurm.go.set()
    assert await publish == 1
    await jobs_poll


async def test_metrics_count_the_jobs_once_per_snapshot_and_follow_a_new_one():
    slurm, sink = GatedSlurm(), MetricsSink()
    monitor = Monitor(SlurmCollector(runner=slurm, timeout=5), sink, persist=False)
    slurm.go.set()
    await monitor.poll_jobs()  # no jobs
    await monitor.poll_nodes()  # alerts evaluated: the (empty) snapshot counted
    await monitor.publish_metrics()
    await monitor.publish_metrics()
    assert monitor.figures.counted == 1  # one snapshot, one count, for the alerts and two publishes
    figured = monitor.figures.figured
    assert figured == len(NODES)
    slurm.jobs = PENDING
    await monitor.poll_jobs()
    await monitor.publish_metrics()
    assert monitor.figures.counted == 2  # a new snapshot is counted again...
    assert monitor.figures.figured == figured  # ...the unchanged nodes' figures are not rebuilt
    assert [data["jobs"]["pending"] for data in sink.metrics] == [0, 0, 1]  # and the figures follow it


def test_the_cache_keeps_the_figures_of_the_same_objects_only():
    cache = FigureCache()
    assert cache.counts(JOBS) is cache.counts(JOBS) and cache.counted == 1
    assert cache.counts(dict(JOBS)) == job_counts(JOBS) and cache.counted == 2
    first = [cache.node(n) for n in NODES.values()]
    assert [cache.node(n) for n in NODES.values()] == first and cache.figured == len(NODES)
    again = parse_nodes(json.dumps(shapes.nodes_doc(RELEASE)))  # equal, but new objects: rebuilt
    [cache.node(n) for n in again.values()]
    assert cache.figured == 2 * len(NODES)
    cache.forget_nodes({})
    assert cache._nodes == {}


def test_figures_from_counts_equal_figures_from_the_jobs():
    counts = job_counts(JOBS)
    assert compute_metrics(JOBS, NODES, counts, FigureCache().node) == compute_metrics(JOBS, NODES)
    assert gauge_figures(JOBS, NODES, 1.0, counts=counts) == gauge_figures(JOBS, NODES, 1.0)
