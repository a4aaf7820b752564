"""The slurmrestd source against Debian's real slurmrestd (22.05, rest_auth/jwt) on the one-node
cluster: a job submitted with sbatch, the node and a finished job's accounting come out of it
as the same records the CLI source makes of squeue, sinfo and sacct."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import time

import pytest

from slurm_monitor.collector import CollectError, SlurmCollector
from slurm_monitor.restd import Credentials, RestdCollector

pytestmark = pytest.mark.timeout(300)
PREFIX = "hub-e2e-restd"


def slurm(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{' '.join(args)} failed: {done.stderr}"
    return done.stdout.strip()


def sbatch(name: str, script: str, hold: bool = False) -> str:
    args = ["sbatch", "--parsable", "-J", f"{PREFIX}-{name}", "-o", "/dev/null", "--chdir", "/tmp"]
    return slurm(*args, *(["--hold"] if hold else []), "--wrap", script).split(";")[0]


async def eventually(probe, what: str, timeout: float = 120.0):
    """``probe()``'s first truthy answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await probe()
        if found:
            return found
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_job_node_and_accounting_are_the_same_through_slurmrestd_and_the_cli(slurmrestd):
    cli = SlurmCollector(timeout=30)
    restd = RestdCollector(slurmrestd["url"], Credentials(user=slurmrestd["user"], token=slurmrestd["token"]),
                           timeout=30)
    assert await restd.slurm_release() == await cli.slurm_release() == (22, 5)
    assert restd.paths is not None and restd.paths[0] == "/slurm/v0.0.38/jobs"

    held = sbatch("held", "sleep 60", hold=True)  # stays PENDING (JobHeldUser): a stable record
    finished = sbatch("exit3", "exit 3")
    try:
        via_restd = (await restd.collect_jobs()).get(held)
        assert via_restd is not None and via_restd.state == "PENDING"
        assert via_restd == (await cli.collect_jobs())[held]

        async def nodes_both_ways():
            # The node changes while jobs start and end (IDLE -> MIXED, its load): compare
            # slurmrestd's answer with the CLI's read just before and just after it, equal.
            before = await cli.collect_nodes()
            via = await restd.collect_nodes()
            after = await cli.collect_nodes()
            return (via, before) if before == after else None

        via_nodes, cli_nodes = await eventually(nodes_both_ways, "the node to hold still between three reads")
        assert via_nodes == cli_nodes

        async def accounted():
            found = await cli.collect_accounting([finished])
            return found if finished in found and found[finished].end_time else None

        by_sacct = await eventually(accounted, f"sacct to know how job {finished} ended")
        by_slurmdb = await restd.collect_accounting([finished])

        # 22.05 (dbv0.0.38) JSON loses the exit code of a job that exited: the CLI source gets it
        # from sacct's text output; slurmdb has no other form, so through slurmrestd it is unknown.
        assert (by_sacct[finished].state, by_sacct[finished].exit_code) == ("FAILED", 3)
        assert (by_slurmdb[finished].state, by_slurmdb[finished].exit_code) == ("FAILED", None)
        assert by_slurmdb[finished] == dataclasses.replace(by_sacct[finished], exit_code=None)
    finally:
        slurm("scancel", held)


async def test_a_bad_token_is_a_failed_poll_not_an_empty_queue(slurmrestd):
    # 22.05 passes the token through to slurmctld, which refuses it: slurmrestd answers 500.
    restd = RestdCollector(slurmrestd["url"], Credentials(user="root", token="not-a-token"), timeout=30)
    with pytest.raises(CollectError, match="HTTP 500: Failed while looking for jobs"):
        await restd.collect_jobs()
