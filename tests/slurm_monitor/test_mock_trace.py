"""The simulator's opt-in trace (``slurm_monitor.mock_trace``, for bench/slurm_e2e.py): every
command with its CPU, every step's changed jobs, every poll's end."""

from __future__ import annotations

import asyncio
import io
import json
import logging

from slurm_monitor.mock_scale import ScaleCluster
from slurm_monitor.mock_trace import Trace, command_kind


def records(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_command_kind_names_commands_without_their_ids():
    assert command_kind(["/usr/bin/squeue", "--only-job-state", "-t", "all", "-h", "-o", "%A|%T|%K"]) == \
        "squeue --only-job-state"
    assert command_kind(["squeue", "--all", "--json", "--jobs=1,2,3"]) == "squeue --json+jobs"
    assert command_kind(["squeue", "--all", "--json"]) == "squeue --json"
    assert command_kind(["scontrol", "show", "nodes", "--json"]) == "scontrol show"
    assert command_kind(["sdiag"]) == "sdiag"


def test_trace_records_commands_steps_and_poll_ends():
    cluster = ScaleCluster(10, 200, seed=3)
    out = io.StringIO()
    trace = Trace(out)
    run = trace.attach(cluster)
    try:
        result = asyncio.run(run(["squeue", "--only-job-state", "-t", "all", "-h", "-o", "%A|%T|%K"], 5))
        logging.getLogger("slurm_monitor").info("jobs poll: %s tier, commands took %.2fs", "state", 0.01)
        logging.getLogger("slurm_monitor").info("something else")
    finally:
        trace.detach()
    step, cmd, poll = records(out)
    assert step["k"] == "step" and step["changes"]
    for job_id, state in step["changes"]:  # what the answer shows is what the step recorded
        if state == "REMOVED":
            assert job_id not in cluster.jobs
            assert f"\n{job_id}|" not in "\n" + result.stdout
    changed = {job_id: state for job_id, state in step["changes"] if state != "REMOVED"}
    for job_id, state in changed.items():
        assert cluster.jobs[job_id].state == state
    assert cmd["k"] == "cmd" and cmd["cmd"] == "squeue --only-job-state" and cmd["rc"] == 0
    assert cmd["t0"] <= step["t"] <= cmd["t1"] and cmd["cpu1"] >= cmd["cpu0"]
    assert poll == {"k": "poll", "stream": "jobs", "t": poll["t"], "cpu": poll["cpu"],
                    "msg": "jobs poll: state tier, commands took 0.01s"}


def test_without_a_trace_the_simulator_keeps_no_change_list():
    cluster = ScaleCluster(5, 50, seed=1)
    cluster.step()
    assert cluster.on_step is None and cluster._changes is None
