"""The simulated cluster: Slurm-shaped output that covers every job and node state."""

from __future__ import annotations

import collections
import json

from slurm_monitor.collector import SlurmCollector
from slurm_monitor.diff import diff_jobs, diff_nodes
from slurm_monitor.mock import MockCluster
from slurm_monitor.snapshot import parse_jobs, parse_nodes


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def simulate(seconds: int, step: int = 5, seed: int = 7):
    clock = Clock()
    cluster = MockCluster(seed=seed, clock=clock)
    collector = SlurmCollector(runner=cluster.run)
    jobs = nodes = None
    marks: dict = {}
    seen: collections.Counter = collections.Counter()
    for _ in range(seconds // step):
        clock.now += step
        current_jobs, current_nodes = await collector.collect_jobs(), await collector.collect_nodes()
        job_changes = diff_jobs(jobs, current_jobs)
        node_changes, marks = diff_nodes(nodes, current_nodes, marks)
        for p in job_changes.publications + node_changes.publications:
            seen[p.event] += 1
            if "state" in p.data:
                seen[("job:" if p.channel == "jobs" else "node:") + p.data["state"]] += 1
            for flag in p.data.get("state_flags", ()):
                seen["flag:" + flag] += 1
        for n in job_changes.notifications + node_changes.notifications:
            seen["note:" + n.type] += 1
        jobs, nodes = current_jobs, current_nodes
    return seen, cluster, collector


async def test_two_simulated_hours_cover_every_state():
    seen, cluster, collector = await simulate(2 * 3600, step=10)
    for key in ("job_submitted", "job_state_changed", "job_removed", "node_state_changed",
                "node_resource_change", "job:PENDING", "job:RUNNING", "flag:COMPLETING",
                "job:COMPLETED", "job:FAILED", "job:CANCELLED", "job:TIMEOUT",
                "node:DRAINED", "node:DRAINING", "node:DOWN", "node:IDLE", "node:MIXED",
                "note:job_completed", "note:job_failed", "note:job_cancelled", "note:job_timeout",
                "note:node_down", "note:node_drained"):
        assert seen[key] > 0, key
    assert collector.release == (25, 11)


async def test_output_is_slurm_2511_shaped_and_parses():
    cluster = MockCluster(seed=1, clock=Clock())
    jobs_doc, nodes_doc = json.loads(cluster.squeue_json()), json.loads(cluster.nodes_json())
    assert jobs_doc["meta"]["slurm"]["release"] == "25.11.0"
    assert all(isinstance(j["job_state"], list) for j in jobs_doc["jobs"])
    assert all(isinstance(n["state"], list) for n in nodes_doc["nodes"])
    jobs, nodes = parse_jobs(jobs_doc), parse_nodes(nodes_doc)
    assert jobs and len(nodes) == 8
    assert sum(n.gpus for n in nodes.values()) == 8
    assert all(n.alloc_cpus <= n.cpus for n in nodes.values())


async def test_same_seed_same_cluster():
    a, b = MockCluster(seed=42, clock=Clock()), MockCluster(seed=42, clock=Clock())
    assert a.squeue_json() == b.squeue_json() and a.nodes_json() == b.nodes_json()


async def test_failed_jobs_report_their_exit_code():
    clock = Clock()
    cluster = MockCluster(seed=3, clock=clock, submit_per_minute=0, warm_up_seconds=0)
    job = cluster.submit(user="alice", cpus=1, gpus=0, duration=10, outcome="FAILED")
    job.exit_code = 3
    clock.now += 30
    result = await cluster.run(["squeue", "--all", "--json"], 5)
    parsed = parse_jobs(result.stdout)[str(job.job_id)]
    assert (parsed.state, parsed.exit_code, parsed.user) == ("FAILED", 3, "alice")


async def test_unknown_command_fails():
    result = await MockCluster(seed=1, clock=Clock()).run(["sacct", "--json"], 5)
    assert result.returncode != 0
