"""The simulated cluster: Slurm-shaped output that covers every job and node state."""

from __future__ import annotations

import collections
import json

import pytest

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
    result = await MockCluster(seed=1, clock=Clock()).run(["sreport", "cluster", "utilization"], 5)
    assert result.returncode != 0


# --- the site-scale simulator (--mock-size NODESxJOBS) ------------------------------------

from slurm_monitor.arrays import array_progress  # noqa: E402
from slurm_monitor.conf import ConfigError, check_mock_size, load_config  # noqa: E402
from slurm_monitor.mock import build_mock_cluster  # noqa: E402
from slurm_monitor.mock_scale import ScaleCluster  # noqa: E402


async def test_scale_cluster_answers_through_the_collector():
    cluster = ScaleCluster(200, 3000, seed=4, clock=Clock())
    collector = SlurmCollector(runner=cluster.run)
    jobs, nodes = await collector.collect_jobs(), await collector.collect_nodes()
    assert collector.release == (25, 11)
    assert len(nodes) == 200 and 2900 <= len(jobs) <= 3100
    assert {p for n in nodes.values() for p in n.partitions} == {"cpu", "gpu", "bigmem", "debug"}
    assert all(n.alloc_cpus <= n.cpus for n in nodes.values())
    states = collections.Counter(j.state for j in jobs.values())
    assert states["RUNNING"] > 0 and states["PENDING"] > 0
    waiting = [j for j in jobs.values() if j.array_tasks]
    assert waiting and all(j.display_id == f"{j.job_id}_[{j.array_tasks}]" for j in waiting)
    assert all(j.reason for j in jobs.values() if j.state == "PENDING")


async def test_scale_cluster_churns_about_one_percent_per_poll():
    cluster = ScaleCluster(150, 2000, seed=5, clock=Clock())
    collector = SlurmCollector(runner=cluster.run)
    previous = await collector.collect_jobs()
    seen: collections.Counter = collections.Counter()
    for _ in range(30):
        current = await collector.collect_jobs()
        rebuilt = collector.job_parser.cache.rebuilt
        assert 0.005 * len(previous) <= rebuilt <= 0.03 * len(previous), rebuilt
        for p in diff_jobs(previous, current).publications:
            seen[(p.event, p.data["state"])] += 1
            seen.update("flag:" + f for f in p.data["state_flags"])
        previous = current
    for key in (("job_submitted", "PENDING"), ("job_state_changed", "RUNNING"),
                ("job_state_changed", "COMPLETED"), ("job_state_changed", "FAILED"),
                ("job_state_changed", "CANCELLED"), ("job_removed", "COMPLETED"), "flag:COMPLETING"):
        assert seen[key] > 0, key
    assert 1950 <= len(previous) <= 2050  # steady: purged jobs are replaced


async def test_scale_cluster_arrays_progress_like_slurm():
    cluster = ScaleCluster(50, 400, seed=6, clock=Clock(), churn=0.05)
    collector = SlurmCollector(runner=cluster.run)
    first = await collector.collect_jobs()
    array = next(j.array_job_id for j in first.values() if j.array_tasks and j.array_job_id)
    totals = []
    for _ in range(200):
        jobs = await collector.collect_jobs()
        progress = array_progress(jobs, only=[array]).get(array)
        if progress is None:
            break
        totals.append((progress.pending, progress.running + progress.done))
    assert totals[0][0] > totals[-1][0]  # tasks left the pending record...
    assert any(started > 0 for _, started in totals)  # ...and ran as records of their own
    tasks = [j for j in jobs.values() if j.array_job_id == array and j.array_task_id is not None]
    assert all(j.display_id == f"{array}_{j.array_task_id}" for j in tasks)


def test_scale_cluster_is_deterministic():
    a, b = ScaleCluster(20, 200, seed=9, clock=Clock()), ScaleCluster(20, 200, seed=9, clock=Clock())
    a.step(), b.step()
    assert a.squeue_json() == b.squeue_json() and a.nodes_json() == b.nodes_json()


def test_mock_size_picks_the_simulator():
    assert isinstance(build_mock_cluster(1), MockCluster)
    scale = build_mock_cluster(1, (10, 50))
    assert isinstance(scale, ScaleCluster) and len(scale.nodes) == 10 and len(scale.jobs) == 50


@pytest.mark.parametrize("text, expected", [("10000x100000", (10000, 100000)), (" 8X0 ", (8, 0))])
def test_check_mock_size(text, expected):
    assert check_mock_size("--mock-size", text) == expected
    assert load_config({"SLURM_MONITOR_MOCK_SIZE": text}).mock_size == expected
    assert load_config({}).mock_size is None


@pytest.mark.parametrize("text", ["big", "10000", "0x10", "10x-1", "x10", "200000x1"])
def test_bad_mock_size_names_the_setting(text):
    with pytest.raises(ConfigError, match="SLURM_MONITOR_MOCK_SIZE"):
        load_config({"SLURM_MONITOR_MOCK_SIZE": text})


def test_bad_mock_size_option_stops_the_command():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="--mock-size"):
        call_command("run_slurm_monitor", "--once", "--mock", "--mock-size", "huge")
