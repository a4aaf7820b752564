"""Slurm monitor: the cost of one jobs poll (decode + normalise + diff) against the queue size.

A synthetic ``squeue --json`` in Slurm 22.05's shape (every record a full real record cloned
from tests/slurm_monitor/fixtures/squeue-22.05-*.json, ~2.5 KB each) with N jobs; a second
poll where 1 % of the jobs changed state. Each size runs in a fresh process so peak RSS is its
own. Reported per size: the first poll (cold), the next poll (1 % churn), the diff, peak RSS.

    python bench/slurm_parse.py                     # 1,000 / 10,000 / 100,000 jobs
    python bench/slurm_parse.py --sizes 1000,50000
    python bench/slurm_parse.py --scale 10000x100000   # the simulated cluster, 1 % churn per poll
    python bench/slurm_parse.py --tiers 10000x100000   # the same, tiered polls (slurm_monitor.tiers)

Run it from a checkout's root: it imports that checkout's ``slurm_monitor`` (so the same
script measures an older revision: ``cd /old/checkout && python /path/to/bench/slurm_parse.py``).
It uses the decode + parse path the collector uses when the checkout has one
(``collector.parse_jobs_output`` with the collector's parser), else ``snapshot.parse_jobs``.
Times are CPU seconds of the process (``time.process_time``): the machine the figures come
from is shared, and wall time there measures the neighbours.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "slurm_monitor" / "fixtures"
TEMPLATES = ("squeue-22.05-mixed.json", "squeue-22.05-live-cancelling.json",
             "squeue-22.05-array-pending.json")
NEXT_STATE = {"PENDING": "RUNNING", "RUNNING": "COMPLETED", "COMPLETING": "CANCELLED",
              "COMPLETED": "FAILED", "FAILED": "CANCELLED", "CANCELLED": "COMPLETED"}


def templates() -> list[dict]:
    records = []
    for name in TEMPLATES:
        records += json.loads((FIXTURES / name).read_text())["jobs"]
    return records


def build_polls(n: int, churn: float = 0.01) -> tuple[str, str, int]:
    """(first poll text, second poll text, jobs changed between them)."""
    base = templates()
    meta = json.loads((FIXTURES / TEMPLATES[0]).read_text())["meta"]
    jobs = []
    for i in range(n):
        record = copy.deepcopy(base[i % len(base)])
        record["job_id"] = 100000 + i
        record["array_job_id"] = 0
        record["array_task_id"] = None
        jobs.append(record)
    first = json.dumps({"meta": meta, "errors": [], "jobs": jobs}, indent=2)
    step = max(1, int(1 / churn))
    changed = 0
    for i in range(0, n, step):
        record = jobs[i]
        record["job_state"] = NEXT_STATE.get(record["job_state"], "RUNNING")
        record["end_time"] = 1800000000 + i
        changed += 1
    second = json.dumps({"meta": meta, "errors": [], "jobs": jobs}, indent=2)
    return first, second, changed


def measure(n: int) -> dict:
    sys.path.insert(0, os.getcwd())
    from slurm_monitor import collector, snapshot
    from slurm_monitor.diff import diff_jobs

    first, second, changed = build_polls(n)
    if hasattr(collector, "parse_jobs_output"):
        job_parser = collector.SlurmCollector().job_parser

        def parse(text: str) -> dict:
            return collector.parse_jobs_output(job_parser, text)
    else:
        parse = snapshot.parse_jobs
    started = time.process_time()
    jobs1 = parse(first)
    cold = time.process_time() - started
    started = time.process_time()
    jobs2 = parse(second)
    warm = time.process_time() - started
    started = time.process_time()
    changes = diff_jobs(jobs1, jobs2)
    diff = time.process_time() - started
    assert len(jobs2) == n and len(changes.publications) == changed, (len(jobs2), len(changes.publications))
    return {"jobs": n, "bytes": len(second), "changed": changed, "first_poll_s": round(cold, 3),
            "next_poll_s": round(warm, 3), "diff_s": round(diff, 4),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}


def measure_scale(size: str, polls: int = 4) -> None:
    """Polls of ``mock_scale.ScaleCluster`` through the collector: the monitor's CPU per poll
    (parse + diff), the simulator's own time left out."""
    import asyncio

    sys.path.insert(0, os.getcwd())
    from slurm_monitor.collector import SlurmCollector
    from slurm_monitor.conf import check_mock_size
    from slurm_monitor.diff import diff_jobs, diff_nodes
    from slurm_monitor.mock_scale import ScaleCluster

    nodes, jobs = check_mock_size("--scale", size)
    started = time.process_time()
    cluster = ScaleCluster(nodes, jobs, seed=1)
    print(f"simulator built in {time.process_time() - started:.1f} CPU s")
    simulator = {"cpu": 0.0}

    async def runner(argv, timeout):
        begun = time.process_time()
        try:
            return await cluster.run(argv, timeout)
        finally:
            simulator["cpu"] += time.process_time() - begun

    async def run() -> None:
        collector = SlurmCollector(runner=runner)
        previous_jobs = previous_nodes = None
        marks: dict = {}
        print(f"{'poll':>4} {'jobs':>7} {'MB':>4} {'rebuilt':>7} {'events':>6} {'jobs CPU s':>10} "
              f"{'nodes CPU s':>11} {'peak RSS MB':>11}")
        for poll in range(polls):
            simulator["cpu"] = 0.0
            begun = time.process_time()
            current = await collector.collect_jobs()
            changes = diff_jobs(previous_jobs, current)
            jobs_cpu = time.process_time() - begun - simulator["cpu"]
            simulator["cpu"] = 0.0
            begun = time.process_time()
            current_nodes = await collector.collect_nodes()
            _, marks = diff_nodes(previous_nodes, current_nodes, marks)
            nodes_cpu = time.process_time() - begun - simulator["cpu"]
            if poll == 0:
                size_mb = len(cluster.squeue_json()) / 1e6
            print(f"{poll:>4} {len(current):>7} {size_mb:>4.0f} {collector.job_parser.cache.rebuilt:>7} "
                  f"{len(changes.publications):>6} {jobs_cpu:>10.2f} {nodes_cpu:>11.2f} "
                  f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024:>11}")
            previous_jobs, previous_nodes = current, current_nodes

    asyncio.run(run())


def measure_tiers(size: str, polls: int = 14, full_every: int = 12) -> None:
    """Tiered jobs polls of the simulated cluster (state tier, detail of what changed, a full
    cycle every ``full_every``): per poll the monitor's CPU (parse, merge and diff; the
    simulator's own time left out), the commands issued and peak RSS (monitor + simulator)."""
    import asyncio

    sys.path.insert(0, os.getcwd())
    from slurm_monitor.collector import SlurmCollector
    from slurm_monitor.conf import check_mock_size
    from slurm_monitor.diff import diff_jobs
    from slurm_monitor.mock_scale import ScaleCluster
    from slurm_monitor.tiers import JobTiers

    nodes, jobs = check_mock_size("--tiers", size)
    cluster = ScaleCluster(nodes, jobs, seed=1)
    simulator = {"cpu": 0.0, "commands": 0}

    async def runner(argv, timeout):
        begun = time.process_time()
        simulator["commands"] += 1
        try:
            return await cluster.run(argv, timeout)
        finally:
            simulator["cpu"] += time.process_time() - begun

    async def run() -> None:
        tiers = JobTiers(SlurmCollector(runner=runner, state_tier=True), full_every=full_every)
        previous = None
        print(f"{'poll':>4} {'kind':>12} {'jobs':>7} {'commands':>8} {'events':>6} {'monitor CPU s':>13} "
              f"{'peak RSS MB':>11}")
        for poll in range(polls):
            simulator["cpu"], simulator["commands"] = 0.0, 0
            begun = time.process_time()
            current, kind = await tiers.collect()
            changes = diff_jobs(previous, current)
            cpu = time.process_time() - begun - simulator["cpu"]
            print(f"{poll:>4} {kind:>12} {len(current):>7} {simulator['commands']:>8} "
                  f"{len(changes.publications):>6} {cpu:>13.2f} "
                  f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024:>11}")
            previous = current

    asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--scale", metavar="NODESxJOBS", help="poll the simulated cluster instead")
    parser.add_argument("--tiers", metavar="NODESxJOBS", help="tiered polls of the simulated cluster")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tiers:
        measure_tiers(args.tiers)
        return
    if args.scale:
        measure_scale(args.scale)
        return
    if args.one:
        print(json.dumps(measure(args.one)))
        return
    print(f"{'jobs':>8} {'MB':>6} {'changed':>8} {'first poll CPU s':>17} {'next poll CPU s':>16} "
          f"{'diff CPU s':>11} {'peak RSS MB':>12}")
    for size in (int(s) for s in args.sizes.split(",")):
        out = subprocess.run([sys.executable, __file__, "--one", str(size)], capture_output=True,
                             text=True, check=True).stdout
        r = json.loads(out)
        print(f"{r['jobs']:>8} {r['bytes'] / 1e6:>6.0f} {r['changed']:>8} {r['first_poll_s']:>17} "
              f"{r['next_poll_s']:>16} {r['diff_s']:>11} {r['peak_rss_mb']:>12}")


if __name__ == "__main__":
    main()
