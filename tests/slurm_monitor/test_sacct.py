"""sacct.py: ``sacct --json`` (built from SchedMD's sources, cited in slurm_monitor/sacct.py) ->
Accounting, and the efficiency figures of the job page."""

from __future__ import annotations

import asyncio
import json

import pytest

from slurm_monitor.collector import CollectError, CommandResult, SlurmCollector
from slurm_monitor.sacct import ENDED_STATES, SACCT_MAX_IDS, efficiency, parse_sacct, sacct_command, slurm_time
from slurm_monitor.snapshot import SnapshotError

GIB = 1024 ** 3


def tres(**counts):
    """[{type, name, id, count}] as _dump_tres_list prints it (mem in MB)."""
    ids = {"cpu": 1, "mem": 2, "node": 4, "billing": 5, "gres/gpu": 1001, "gres/gpuutil": 1002}
    out = []
    for key, count in counts.items():
        kind, _, name = key.replace("__", "/").partition("/")
        out.append({"type": kind, "name": name, "id": ids.get(key.replace("__", "/"), 9), "count": count})
    return out


def job_v0038(job_id=201, state="COMPLETED", exit_code=None, elapsed=600, cpus=4, mem_mb=8192,
              total=(1200, 500000), max_rss_bytes=2 * GIB, gpus=0, gpuutil=None, end=1700000700):
    """One job of 22.05's ``sacct --json`` (openapi dbv0.0.38 parse_job[] paths)."""
    allocated = {"cpu": cpus, "mem": mem_mb, "node": 1}
    if gpus:
        allocated["gres__gpu"] = gpus
    step_max = [{"type": "mem", "name": "", "id": 2, "count": max_rss_bytes, "node": "cn01", "task": 0},
                {"type": "cpu", "name": "", "id": 1, "count": 1190000, "node": "cn01", "task": 0}]
    if gpuutil is not None:
        step_max.append({"type": "gres", "name": "gpuutil", "id": 1002, "count": gpuutil, "node": "cn01", "task": 0})
    return {
        "account": "physics", "allocation_nodes": 1,
        "array": {"job_id": 0, "limits": {"max": {"running": {"tasks": 0}}}, "task": None, "task_id": None},
        "association": {"account": "physics", "cluster": "c1", "partition": None, "user": "alice"},
        "cluster": "c1", "comment": {"administrator": None, "job": None, "system": None},
        "derived_exit_code": {"status": "SUCCESS", "return_code": 0},
        "exit_code": exit_code or {"status": "SUCCESS", "return_code": 0},
        "flags": ["CLEAR_SCHEDULING", "STARTED_ON_BACKFILL"], "group": "alice", "job_id": job_id,
        "name": "train", "nodes": "cn01", "partition": "batch", "priority": 4294901759, "qos": "normal",
        "required": {"CPUs": cpus, "memory": mem_mb},
        "state": {"current": state, "reason": "None"},
        "steps": [{"nodes": {"count": 1, "range": "cn01", "list": ["cn01"]},
                   "step": {"job_id": job_id, "id": "batch", "name": "batch"},
                   "state": state, "exit_code": {"status": "SUCCESS", "return_code": 0},
                   "time": {"elapsed": elapsed, "start": end - elapsed, "end": end},
                   "tres": {"requested": {"max": step_max, "min": [], "average": [], "total": []},
                            "consumed": {"max": [], "min": [], "average": [], "total": []},
                            "allocated": tres(cpu=cpus, mem=mem_mb, node=1)}}],
        "time": {"elapsed": elapsed, "eligible": end - elapsed - 5, "end": end, "start": end - elapsed,
                 "submission": end - elapsed - 10, "suspended": 0, "limit": 60,
                 "system": {"seconds": 100, "microseconds": 0},
                 "total": {"seconds": total[0], "microseconds": total[1]},
                 "user": {"seconds": total[0] - 100, "microseconds": total[1]}},
        "tres": {"allocated": tres(**allocated), "requested": tres(cpu=cpus, mem=mem_mb, node=1)},
        "user": "alice", "wckey": {"wckey": "", "flags": []},
        "working_directory": "/home/alice/run1",
    }


def doc(*jobs, errors=()):
    return {"meta": {"plugin": {"type": "openapi/dbv0.0.38", "name": "Slurm OpenAPI DB v0.0.38"},
                     "Slurm": {"version": {"major": 22, "micro": 8, "minor": 5}, "release": "22.05.8"}},
            "errors": list(errors), "jobs": list(jobs)}


def test_a_completed_job_and_its_efficiency():
    acct = parse_sacct(json.dumps(doc(job_v0038())))["201"]
    assert (acct.state, acct.exit_code, acct.signal) == ("COMPLETED", 0, None)
    assert (acct.start_time, acct.end_time, acct.submit_time) == (1700000100, 1700000700, 1700000090)
    assert (acct.elapsed_seconds, acct.time_limit_minutes, acct.cpus, acct.memory_mb) == (600, 60, 4, 8192)
    assert acct.total_cpu_seconds == 1200.5 and acct.max_rss_mb == 2048.0
    assert (acct.account, acct.qos, acct.working_directory, acct.nodes) == (
        "physics", "normal", "/home/alice/run1", "cn01")
    eff = efficiency(acct.as_dict())
    assert eff["cpu"] == {"used_seconds": 1200.5, "available_seconds": 2400, "percent": 50.0}
    assert eff["memory"] == {"max_rss_mb": 2048.0, "requested_mb": 8192, "percent": 25.0}
    assert eff["gpu"] == {"requested": 0, "percent": None}


def test_failed_signalled_and_gpu_jobs():
    failed = job_v0038(202, "FAILED", exit_code={"status": "ERROR", "return_code": 3})
    killed = job_v0038(203, "CANCELLED", exit_code={"status": "SIGNALED", "return_code": None,
                                                    "signal": {"signal_id": 9, "name": "Killed"}})
    gpu = job_v0038(204, gpus=2, gpuutil=37)
    got = parse_sacct(doc(failed, killed, gpu))
    assert (got["202"].state, got["202"].exit_code) == ("FAILED", 3)
    assert (got["203"].state, got["203"].exit_code, got["203"].signal) == ("CANCELLED", 0, 9)
    assert got["204"].gpus == 2 and efficiency(got["204"].as_dict())["gpu"] == {"requested": 2, "percent": 37}


def test_the_23_11_shape_state_list_and_number_objects():
    """v0.0.40+: state.current a flag list, exit_code PROCESS_EXIT_CODE, counts number objects."""
    job = job_v0038(205, exit_code={"status": ["ERROR"], "return_code": {"set": True, "infinite": False, "number": 2},
                                    "signal": {"id": {"set": False, "infinite": False, "number": 0}, "name": ""}})
    job["state"] = {"current": ["FAILED"], "reason": "NonZeroExitCode"}
    job["time"]["limit"] = {"set": True, "infinite": False, "number": 30}
    job["required"] = {"CPUs": 4, "memory_per_cpu": {"set": False, "infinite": False, "number": 0},
                       "memory_per_node": {"set": True, "infinite": False, "number": 8192}}
    acct = parse_sacct(doc(job))["205"]
    assert (acct.state, acct.reason, acct.exit_code, acct.time_limit_minutes) == ("FAILED", "NonZeroExitCode", 2, 30)


def test_unknown_figures_are_null():
    job = job_v0038(206, "CANCELLED", elapsed=0)
    job["steps"] = []  # cancelled before it ran: no step, no MaxRSS
    eff = efficiency(parse_sacct(doc(job))["206"].as_dict())
    assert eff["cpu"]["percent"] is None and eff["memory"] == {"max_rss_mb": None, "requested_mb": 8192,
                                                                "percent": None}
    assert efficiency(None) is None


@pytest.mark.parametrize("raw", ["", "not json", json.dumps({"jobs": "x"}),
                                 json.dumps(doc(errors=[{"error": "Slurm accounting storage is disabled"}]))])
def test_broken_output_raises(raw):
    with pytest.raises(SnapshotError):
        parse_sacct(raw)


def test_one_batched_bounded_command():
    ids = [str(i) for i in range(1, SACCT_MAX_IDS + 50)]
    argv = sacct_command(ids)
    assert argv[:4] == ["sacct", "--json", "--allusers", "-j"]
    assert argv[4].split(",") == ids[:SACCT_MAX_IDS]


def test_the_collector_runs_one_sacct_and_reports_failures():
    calls = []

    async def runner(argv, timeout):
        calls.append(list(argv))
        if "999" in argv[-1]:
            return CommandResult(tuple(argv), 1, "", "sacct: error: Problem talking to the database", 0.0)
        if argv[0] == "scontrol":
            return CommandResult(tuple(argv), 0, "slurm-wlm 22.05.8\n", "", 0.0)
        if "--json" not in argv:  # 22.05's text output, for the exit code its JSON lost
            return CommandResult(tuple(argv), 0, "202|3:0\n", "", 0.0)
        return CommandResult(tuple(argv), 0, json.dumps(doc(job_v0038(201), job_v0038(202, "FAILED"))), "", 0.0)

    collector = SlurmCollector(runner=runner)
    got = asyncio.run(collector.collect_accounting(["201", "202"]))
    # 22.05 (dbv0.0.38) JSON says {"status": "SUCCESS", "return_code": 0} for the failed job:
    # its exit code comes from one text sacct call for the jobs whose code was lost.
    assert calls == [["sacct", "--json", "--allusers", "-j", "201,202"], ["scontrol", "--version"],
                     ["sacct", "--allusers", "-X", "-n", "-P", "-o", "JobIDRaw,ExitCode", "-j", "202"]]
    assert {k: (a.state, a.exit_code) for k, a in got.items()} == {"201": ("COMPLETED", 0), "202": ("FAILED", 3)}
    with pytest.raises(CollectError, match="Problem talking to the database"):
        asyncio.run(collector.collect_accounting(["999"]))
    assert collector.commands_run["sacct"] == 3


def test_the_gap_query_on_22_05_takes_the_lost_exit_codes_from_the_same_window():
    calls = []

    async def runner(argv, timeout):
        calls.append(list(argv))
        if argv[0] == "scontrol":
            return CommandResult(tuple(argv), 0, "slurm-wlm 22.05.8\n", "", 0.0)
        if "--json" not in argv:
            return CommandResult(tuple(argv), 0, "202|3:0\n", "", 0.0)
        array_task = dict(job_v0038(201), array={"job_id": 200, "task_id": 4})
        return CommandResult(tuple(argv), 0, json.dumps(doc(array_task, job_v0038(202, "FAILED"))), "", 0.0)

    start, end = 1796310000, 1796313600
    got = asyncio.run(SlurmCollector(runner=runner).collect_ended(start, end))
    window = ["-S", slurm_time(start), "-E", slurm_time(end), "-s", ENDED_STATES]
    assert calls == [["sacct", "--json", "--allusers", "-X", *window], ["scontrol", "--version"],
                     ["sacct", "--allusers", "-X", "-n", "-P", "-o", "JobIDRaw,ExitCode", *window]]
    assert {k: (a.state, a.exit_code, a.user, a.name, a.partition, a.array_job_id, a.array_task_id)
            for k, a in got.items()} == {"201": ("COMPLETED", 0, "alice", "train", "batch", "200", 4),
                                         "202": ("FAILED", 3, "alice", "train", "batch", None, None)}


def test_a_requeued_job_keeps_its_last_run():
    first, second = job_v0038(207, "REQUEUED"), job_v0038(207, "COMPLETED")
    assert parse_sacct(doc(first, second))["207"].state == "COMPLETED"


def test_steps_as_accounting_recorded_them():
    """Issue 14: the job page lists a job's steps (22.05's step.id a string; later releases may
    nest it); a step without an id is skipped."""
    job = job_v0038(job_id=210, exit_code={"status": "ERROR", "return_code": 2})
    job["steps"].append({"step": {"id": {"job_id": 210, "step_id": 0}, "name": "python"}, "state": ["FAILED"],
                         "exit_code": {"status": "ERROR", "return_code": 2}, "time": {"elapsed": 30},
                         "nodes": {"range": "cn01"}})
    job["steps"].append({"step": {}, "state": "COMPLETED"})
    steps = parse_sacct(doc(job))["210"].as_dict()["steps"]
    assert steps == [
        {"step": "batch", "name": "batch", "state": "COMPLETED", "exit_code": 0, "signal": None,
         "elapsed_seconds": 600, "nodes": "cn01"},
        {"step": "0", "name": "python", "state": "FAILED", "exit_code": 2, "signal": None,
         "elapsed_seconds": 30, "nodes": "cn01"},
    ]
