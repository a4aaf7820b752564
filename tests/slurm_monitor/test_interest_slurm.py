"""The commands of interest-driven polling on the real one-node Slurm (22.05 here): ``squeue
--start`` for a pending held job, for an id the queue does not know, and ``sstat`` for a
running job. Jobs are named ``hub-interest-*`` (a shared cluster) and cancelled."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from slurm_monitor.collector import SlurmCollector, run_command
from tests.slurm_monitor.test_e2e_slurm import slurm, wait_until

PREFIX = "hub-interest"


def submit(name: str, script: str, hold: bool = False) -> str:
    args = ["sbatch", "--parsable", "-J", f"{PREFIX}-{name}", "-o", "/dev/null", "--chdir", "/tmp",
            "-n", "1", "--mem", "50M"]
    return slurm(*args, *(["--hold"] if hold else []), "--wrap", script).split(";")[0]


def state_of(job_id: str) -> str:
    return slurm("squeue", "-h", "-j", job_id, "-o", "%T")


def gathers_usage() -> bool:
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30).stdout
    line = next((x for x in config.splitlines() if x.startswith("JobAcctGatherType")), "")
    return not line.rstrip().endswith("/none")


@pytest.fixture
def jobs():
    submitted: list[str] = []
    yield submitted
    for job_id in submitted:
        subprocess.run(["scancel", job_id], capture_output=True, timeout=60)


async def test_start_estimates_and_step_usage_parse_on_real_slurm(slurm_cluster, jobs):
    collector = SlurmCollector(runner=run_command, timeout=20)
    held = submit("held", "sleep 300", hold=True)
    jobs.append(held)
    running = submit("run", "sleep 300")
    jobs.append(running)
    await asyncio.to_thread(wait_until, lambda: state_of(held) == "PENDING", f"job {held} pending")

    # a held job: the scheduler has no estimate (squeue prints N/A): known, and None
    assert await collector.collect_start_estimates([held]) == {held: None}
    # an id the queue does not know: squeue exits 1 ("Invalid job id"), an empty answer
    assert await collector.collect_start_estimates(["4000000"]) == {}

    await asyncio.to_thread(wait_until, lambda: state_of(running) == "RUNNING", f"job {running} running",
                            timeout=180)
    # a running job is not pending: squeue --start leaves it out
    assert await collector.collect_start_estimates([running]) == {}
    usage = await collector.collect_step_usage([running, held])
    if gathers_usage():
        assert set(usage) == {running} and usage[running].cpu_seconds is not None
    else:  # JobAcctGatherType=jobacct_gather/none (this machine): zero tasks, garbage AveCPU, dropped
        assert usage == {}
    assert collector.commands_run["squeue"] == 3 and collector.commands_run["sstat"] == 1
