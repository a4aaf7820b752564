"""One monitor, in this process, against the simulated site: each jobs poll end to end (issue 13).

    .venv/bin/python -m bench.slurm_poll --size 10000x100000 [--polls 6] [--profile out.prof]
    cd <old checkout> && <venv>/bin/python <this checkout>/bench/slurm_poll.py   # "before"

The monitor's real classes (``Monitor``, ``SlurmCollector`` with the state tier, ``LayerSink``
through ``hub.publish`` to a private ``redis-server`` this script starts on a free loopback
port and stops by PID, a private SQLite database in a temporary directory), the simulator
(``mock_scale.ScaleCluster``) answering its commands. Per jobs poll: kind, events, the
monitor's CPU (every thread: parse, diff, publishing, the database; the simulator's answering
CPU left out), wall time, and where the CPU went (collect, diff, deliver, save) by timing
the stages from outside (wrapped methods, no change to the monitor). Then the process's peak
RSS (VmHWM: monitor + simulator) and the simulator's share measured as the RSS it held after
being built (``--sim-only``: build the simulator only and report that).

``--profile FILE``: a cProfile of the state+detail polls (main thread; the database work runs
in asgiref's thread and shows only as its stage's time).

``--nodes-every K``: after every K-th jobs poll, one nodes poll and one metrics publish, each
timed by stage the same way (nodes: collect, diff, reminders, alerts with the rules'
evaluation in the database thread, deliver, save with ``save_nodes``; metrics:
compute_metrics, gauge_figures, deliver, writes), as ``n:``/``m:`` lines. K=2 is the e2e
ratio (jobs every 5 s, nodes every 10 s). ``--profile`` then covers these too.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path.cwd()  # the checkout measured: run from its root (a "before" checkout too)


def vm(field: str) -> int:
    """A /proc/self/status figure in MB (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stages:
    """CPU (process-wide) and wall seconds of named stages, by wrapping coroutine functions."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}
        self.wall: dict[str, float] = {}
        self.sim = 0.0
        self.hwm: dict[str, int] = {}
        self.db_profile: cProfile.Profile | None = None  # --profile: the database thread's stages

    def wrap(self, owner: object, name: str, label: str) -> None:
        inner = getattr(owner, name)

        async def timed(*args, **kwargs):
            cpu, wall, sim = time.process_time(), time.monotonic(), self.sim
            try:
                return await inner(*args, **kwargs)
            finally:
                self.cpu[label] = self.cpu.get(label, 0.0) + time.process_time() - cpu - (self.sim - sim)
                self.wall[label] = self.wall.get(label, 0.0) + time.monotonic() - wall
                self.hwm.setdefault(label, vm("VmHWM"))  # the process's peak when this stage first ended

        setattr(owner, name, timed)

    def wrap_sync(self, module: object, name: str, label: str) -> None:
        inner = getattr(module, name)

        def timed(*args, **kwargs):
            cpu = time.thread_time()
            try:
                if self.db_profile is not None:
                    self.db_profile.enable()
                return inner(*args, **kwargs)
            finally:
                if self.db_profile is not None:
                    self.db_profile.disable()
                self.cpu[label] = self.cpu.get(label, 0.0) + time.thread_time() - cpu

        setattr(module, name, timed)

    def wrap_cpu(self, owner: object, name: str, label: str) -> None:
        """A plain function run on the event loop: its process CPU."""
        inner = getattr(owner, name)

        def timed(*args, **kwargs):
            cpu = time.process_time()
            try:
                return inner(*args, **kwargs)
            finally:
                self.cpu[label] = self.cpu.get(label, 0.0) + time.process_time() - cpu

        setattr(owner, name, timed)

    def reset(self) -> None:
        self.cpu.clear()
        self.wall.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="10000x100000")
    parser.add_argument("--polls", type=int, default=6, help="jobs polls after the baseline")
    parser.add_argument("--profile", help="write a cProfile of the state+detail polls here")
    parser.add_argument("--nodes-every", type=int, default=0,
                        help="a nodes poll and a metrics publish after every K-th jobs poll (0: none)")
    parser.add_argument("--sim-only", action="store_true", help="build the simulator only: its RSS")
    options = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from slurm_monitor.conf import check_mock_size
    from slurm_monitor.mock_scale import ScaleCluster

    nodes, jobs = check_mock_size("--size", options.size)
    if options.sim_only:
        before = vm("VmRSS")
        cluster = ScaleCluster(nodes, jobs, seed=1)
        cluster.nodes_json()
        print(f"simulator: RSS {vm('VmRSS') - before} MB after building {len(cluster.jobs)} jobs "
              f"(process {vm('VmRSS')} MB, peak {vm('VmHWM')} MB)")
        return
    tmp = Path(tempfile.mkdtemp(prefix="slurm-poll-"))
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", str(tmp)], stdout=subprocess.DEVNULL)
    try:
        os.environ.update({"DJANGO_SETTINGS_MODULE": "realtime_project.settings",
                           "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY") or "bench-" + "x" * 50,
                           "SQLITE_PATH": str(tmp / "db.sqlite3"), "REDIS_URL": f"redis://127.0.0.1:{port}/0"})
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", "--noinput", verbosity=0)
        asyncio.run(run(nodes, jobs, options))
    finally:
        redis.terminate()
        redis.wait(10)


async def run(nodes: int, jobs: int, options: argparse.Namespace) -> None:
    from slurm_monitor import monitor as monitor_module, store
    from slurm_monitor.collector import SlurmCollector
    from slurm_monitor.mock_scale import ScaleCluster
    from slurm_monitor.monitor import History, Monitor
    from slurm_monitor.sinks import LayerSink

    stages = Stages()
    before = vm("VmRSS")
    cluster = ScaleCluster(nodes, jobs, seed=1)
    sim_rss = vm("VmRSS") - before

    async def runner(argv, timeout):
        begun = time.process_time()
        try:
            return await cluster.run(argv, timeout)
        finally:
            stages.sim += time.process_time() - begun

    collector = SlurmCollector(runner=runner, state_tier=True, sdiag=False)
    monitor = Monitor(collector, LayerSink(), source="bench", history=History(sacct_batch=0))
    monitor.history_due = float("inf")
    stages.wrap(monitor.tiers, "collect", "collect")
    stages.wrap(monitor, "deliver", "deliver")
    stages.wrap(monitor, "_save", "save")
    stages.wrap(monitor, "_heartbeat", "heartbeat")
    stages.wrap(monitor, "_record_poll", "record_poll")
    stages.wrap(monitor.interest, "step", "interest")
    stages.wrap_sync(store, "save_jobs", "save_jobs (db thread)")
    from hub.notify import notifications

    if hasattr(notifications, "create_notifications"):  # not in a "before" checkout
        stages.wrap_sync(notifications, "create_notifications", "notifications (db thread)")
    diff = monitor_module.diff_jobs

    def timed_diff(*args):
        begun = time.process_time()
        try:
            return diff(*args)
        finally:
            stages.cpu["diff"] = stages.cpu.get("diff", 0.0) + time.process_time() - begun

    monitor_module.diff_jobs = timed_diff  # type: ignore[assignment]
    if options.nodes_every:
        wrap_other_streams(monitor, stages)
    profile = cProfile.Profile() if options.profile else None
    print(f"simulator built: {len(cluster.jobs)} jobs, +{sim_rss} MB RSS; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for poll in range(options.polls + 1):
        stages.reset()
        stages.sim = 0.0
        kind_before = dict(monitor.stats)
        cpu, wall = time.process_time(), time.monotonic()
        if profile is not None and poll > 0:
            profile.enable()
            stages.db_profile = cProfile.Profile()
        sent = await monitor.poll_jobs()
        if profile is not None:
            profile.disable()
        cpu = time.process_time() - cpu - stages.sim
        wall = time.monotonic() - wall
        kind = next((k[len("jobs_polls_"):] for k, v in monitor.stats.items()
                     if k.startswith("jobs_polls_") and v != kind_before.get(k, 0)), "?")
        parts = " ".join(f"{k}={v:.2f}" + (f"/{stages.wall[k]:.2f}w" if k in stages.wall else "")
                         for k, v in stages.cpu.items())
        print(f"poll {poll}: {kind:<12} events {sent:>5} cpu {cpu:5.2f} s wall {wall:5.2f} s "
              f"(sim {stages.sim:.2f}) | {parts} | rss {vm('VmRSS')} MB hwm {vm('VmHWM')} MB", flush=True)
        if options.nodes_every and poll % options.nodes_every == 0:
            await other_streams(monitor, stages, profile if poll > 0 else None)
        await asyncio.sleep(0.2)
    print("peak RSS (VmHWM, MB) when each stage first ended:", stages.hwm)
    print(f"peak RSS (VmHWM) {vm('VmHWM')} MB, of which the simulator held {sim_rss} MB after being built")
    if profile is not None:
        profile.dump_stats(options.profile)
    if stages.db_profile is not None:
        stages.db_profile.dump_stats(options.profile + ".db")


def wrap_other_streams(monitor, stages: Stages) -> None:
    """The nodes and metrics streams' stages (labels prefixed so they never mix with a jobs
    poll's; ``stages`` is reset before each poll anyway)."""
    import importlib

    from slurm_monitor import monitor as monitor_module, store

    try:  # where the streams live since branch nodes; before, in monitor itself
        streams = importlib.import_module("slurm_monitor.monitor_nodes")
    except ImportError:
        streams = monitor_module
    stages.wrap(monitor.collector, "collect_nodes", "collect")
    stages.wrap(monitor, "_evaluate_alerts", "alerts")
    stages.wrap(monitor, "_write", "write")
    stages.wrap_sync(store, "save_nodes", "save_nodes (db thread)")
    stages.wrap_sync(streams, "evaluate_and_record", "rules (db thread)")
    for owner, name, label in ((streams, "diff_nodes", "diff"), (monitor.reminders, "nodes", "reminders"),
                               (streams, "compute_metrics", "compute_metrics"),
                               (streams, "gauge_figures", "gauge_figures")):
        stages.wrap_cpu(owner, name, label)


async def other_streams(monitor, stages: Stages, profile: cProfile.Profile | None) -> None:
    """One nodes poll then one metrics publish, each printed like a jobs poll."""
    for label, poll in (("n", monitor.poll_nodes), ("m", monitor.publish_metrics)):
        stages.reset()
        stages.sim = 0.0
        cpu, wall = time.process_time(), time.monotonic()
        if profile is not None:
            profile.enable()
        sent = await poll()
        if profile is not None:
            profile.disable()
        cpu = time.process_time() - cpu - stages.sim
        wall = time.monotonic() - wall
        parts = " ".join(f"{k}={v:.2f}" + (f"/{stages.wall[k]:.2f}w" if k in stages.wall else "")
                         for k, v in stages.cpu.items())
        print(f"  {label}: events {sent:>5} cpu {cpu:5.2f} s wall {wall:5.2f} s (sim {stages.sim:.2f}) | {parts}",
              flush=True)


if __name__ == "__main__":
    main()
