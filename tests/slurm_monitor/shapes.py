"""The same small cluster written in the JSON shape of each Slurm release, 22.05 to 25.11.

Real 22.05 output is in fixtures/ (captured from Debian's slurm-wlm 22.05.8). The newer shapes
are built from SchedMD's data_parser sources and published slurmrestd/squeue output:

- 22.05 (openapi v0.0.38): plain numbers and timestamps; ``job_state`` a string (COMPLETING
  wins over the base state); ``exit_code`` the raw wait status; nodes from ``sinfo --json``
  with lower-case ``state`` + ``state_flags``, ``free_memory``, ``idle_cpus``; meta.Slurm.
- 23.02 (data_parser v0.0.39, parsers.c at slurm-23-02-7-1): counts become
  ``{set, infinite, number}`` (UINT32_NO_VAL) but ``job_id`` stays plain (UINT32);
  timestamps stay plain (UINT64); ``exit_code`` is the raw wait status in a number object
  (UINT32_NO_VAL from 23.02.4; plain UINT32 before); ``job_state`` a string
  (job_state_string(): COMPLETING hides the base state); nodes from
  ``scontrol show nodes --json``: upper-case ``state`` list, ``free_mem`` (plain),
  ``alloc_idle_cpus``.
- 23.11 (v0.0.40) and later (v0.0.41 24.05, v0.0.42 24.11, v0.0.43 25.05, v0.0.44 25.11):
  ``job_state`` a list with the base state first, then flags; timestamps objects
  (TIMESTAMP_NO_VAL); ``exit_code`` PROCESS_EXIT_CODE ``{"status": [...], "return_code":
  {...}, "signal": {"id": {...}, "name": ...}}`` (a signalled job has return_code NO_VAL);
  ``free_mem`` an object; meta.slurm with string version numbers.

releases.py has the per-data_parser-version fixtures, cited field by field.
"""

from __future__ import annotations

import copy
from typing import Any

RELEASES = ("22.05", "23.02", "23.11", "24.05", "24.11", "25.05", "25.11")
NO_VAL = 4294967294
INFINITE = 4294967295

# job: (id, user, partition, state, flags, reason, nodes, cpus, tres, submit, start, end,
#       limit (None = unlimited), exit status (raw wait status), signal)
JOBS: list[dict[str, Any]] = [
    dict(id=101, user="alice", partition="gpu", state="PENDING", flag=None, reason="Resources",
         nodes="", cpus=4, tres_req="cpu=4,mem=16G,node=1,billing=4,gres/gpu=2", tres_alloc="",
         submit=1700000000, start=0, end=0, limit=60, raw_exit=NO_VAL),
    dict(id=102, user="bob", partition="cpu", state="RUNNING", flag=None, reason="None",
         nodes="cn01", cpus=8, tres_req="cpu=8,mem=8000M,node=1", tres_alloc="cpu=8,mem=8000M,node=1",
         submit=1700000050, start=1700000100, end=1731536100, limit=None, raw_exit=0),
    dict(id=103, user="carol", partition="cpu", state="FAILED", flag=None, reason="NonZeroExitCode",
         nodes="cn01", cpus=1, tres_req="cpu=1,mem=1G,node=1", tres_alloc="cpu=1,mem=1G,node=1",
         submit=1700000000, start=1700000200, end=1700000300, limit=30, raw_exit=3 << 8),
    dict(id=104, user="dave", partition="cpu", state="CANCELLED", flag=None, reason="None",
         nodes="cn01", cpus=2, tres_req="cpu=2,node=1", tres_alloc="cpu=2,node=1",
         submit=1700000000, start=1700000200, end=1700000400, limit=30, raw_exit=15),
    dict(id=105, user="alice", partition="cpu", state="TIMEOUT", flag=None, reason="TimeLimit",
         nodes="cn01", cpus=1, tres_req="cpu=1,node=1", tres_alloc="cpu=1,node=1",
         submit=1700000000, start=1700000100, end=1700000700, limit=10, raw_exit=15),
    dict(id=106, user="bob", partition="gpu", state="COMPLETED", flag="COMPLETING", reason="None",
         nodes="gpu01", cpus=64, tres_req="cpu=64,mem=100G,node=1,gres/gpu=4",
         tres_alloc="cpu=64,mem=100G,node=1,gres/gpu=4,gres/gpu:a100=4",
         submit=1700000000, start=1700000100, end=1700000800, limit=120, raw_exit=0),
    dict(id=107, user="alice", partition="cpu", state="COMPLETED", flag=None, reason="None",
         nodes="cn01", cpus=1, tres_req="cpu=1,node=1", tres_alloc="cpu=1,node=1",
         submit=1700000000, start=1700000100, end=1700000200, limit=5, raw_exit=0),
]

NODES: list[dict[str, Any]] = [
    dict(name="cn01", base="MIXED", flags=[], cpus=32, alloc=12, load=650, real=64000, alloc_mem=9024,
         free=50000, gres="", gres_used="", partitions=["cpu"], reason=""),
    dict(name="cn02", base="IDLE", flags=["DRAIN"], cpus=32, alloc=0, load=3, real=64000, alloc_mem=0,
         free=60000, gres="", gres_used="", partitions=["cpu"], reason="disk replacement"),
    dict(name="cn03", base="DOWN", flags=["NOT_RESPONDING"], cpus=32, alloc=0, load=NO_VAL, real=64000,
         alloc_mem=0, free=NO_VAL, gres="", gres_used="", partitions=["cpu"], reason="Not responding"),
    dict(name="gpu01", base="ALLOCATED", flags=[], cpus=64, alloc=64, load=6400, real=512000,
         alloc_mem=102400, free=300000, gres="gpu:a100:4(S:0-1)", gres_used="gpu:a100:4(IDX:0-3)",
         partitions=["gpu"], reason=""),
    dict(name="gpu02", base="MIXED", flags=["DRAIN"], cpus=64, alloc=16, load=1200, real=512000,
         alloc_mem=4096, free=400000, gres="gpu:h100:2,gpu:h200:4",
         gres_used="gpu:h100:1(IDX:0),gpu:h200:0(IDX:N/A)", partitions=["gpu"], reason="ECC errors"),
]


def obj(value: int | None, infinite: bool = False) -> dict[str, Any]:
    if infinite:
        return {"set": False, "infinite": True, "number": 0}
    if value is None or value in (NO_VAL, INFINITE):
        return {"set": False, "infinite": False, "number": 0}
    return {"set": True, "infinite": False, "number": value}


def _meta(release: str) -> dict[str, Any]:
    major, minor = release.split(".")
    if release in ("22.05", "23.02"):
        parser = "openapi/v0.0.38" if release == "22.05" else "data_parser/v0.0.39"
        return {"plugin": {"type": parser, "name": "Slurm OpenAPI"},
                "Slurm": {"version": {"major": int(major), "micro": 1, "minor": int(minor)},
                          "release": f"{release}.1"}}
    return {"plugin": {"type": "openapi/slurmctld", "data_parser": "data_parser/v0.0.4x"},
            "slurm": {"version": {"major": major, "micro": "1", "minor": minor},
                      "release": f"{release}.1", "cluster": "hpc"}}


def _state_string(job: dict[str, Any]) -> str:
    return job["flag"] or job["state"]  # 22.05/23.02's job_state_string: COMPLETING wins


def _verbose_exit(raw: int) -> dict[str, Any]:
    """DUMP_FUNC(PROCESS_EXIT_CODE) (v0.0.40+): a signalled status leaves return_code NO_VAL."""
    if raw == NO_VAL:
        return {"status": ["PENDING"], "return_code": obj(None), "signal": {"id": obj(None), "name": ""}}
    signal, code = raw & 0x7F, (raw >> 8) & 0xFF
    status = "SIGNALED" if signal else "ERROR" if code else "SUCCESS"
    return {"status": [status], "return_code": obj(None if signal else code),
            "signal": {"id": obj(signal or None), "name": "TERM" if signal == 15 else ""}}


def job_record(job: dict[str, Any], release: str) -> dict[str, Any]:
    common = {"name": f"job{job['id']}", "user_name": job["user"], "user_id": 1000 + job["id"],
              "partition": job["partition"], "state_reason": job["reason"], "nodes": job["nodes"],
              "tres_req_str": job["tres_req"], "tres_alloc_str": job["tres_alloc"], "account": "",
              "group_name": "users", "priority": 4294901759}
    if release == "22.05":
        return {**common, "job_id": job["id"], "job_state": _state_string(job),
                "cpus": job["cpus"], "node_count": 1, "submit_time": job["submit"],
                "start_time": job["start"], "end_time": job["end"],
                "time_limit": job["limit"],  # 22.05 prints null for NO_VAL / unlimited
                "exit_code": job["raw_exit"] if job["raw_exit"] != NO_VAL else 0,
                "array_job_id": 0, "array_task_id": None}
    numbers = {"job_id": job["id"],
               "cpus": obj(job["cpus"]), "node_count": obj(1),
               "time_limit": obj(job["limit"], infinite=job["limit"] is None),
               "array_job_id": obj(0), "array_task_id": obj(None)}
    if release == "23.02":
        return {**common, **numbers, "job_state": _state_string(job), "submit_time": job["submit"],
                "start_time": job["start"], "end_time": job["end"],
                "exit_code": obj(job["raw_exit"])}
    state = [job["state"], job["flag"]] if job["flag"] else [job["state"]]
    return {**common, **numbers, "job_state": state, "submit_time": obj(job["submit"]),
            "start_time": obj(job["start"]), "end_time": obj(job["end"]),
            "exit_code": _verbose_exit(job["raw_exit"]),
            "derived_exit_code": _verbose_exit(0)}


def node_record(node: dict[str, Any], release: str) -> dict[str, Any]:
    common = {"name": node["name"], "hostname": node["name"], "cpus": node["cpus"],
              "alloc_cpus": node["alloc"], "real_memory": node["real"], "alloc_memory": node["alloc_mem"],
              "gres": node["gres"], "gres_used": node["gres_used"], "gres_drained": "N/A",
              "partitions": node["partitions"], "reason": node["reason"], "cpu_load": node["load"]}
    idle = node["cpus"] - node["alloc"]
    if release == "22.05":
        return {**common, "state": node["base"].lower(), "state_flags": node["flags"],
                "free_memory": node["free"], "idle_cpus": idle}
    free = node["free"] if release == "23.02" else obj(node["free"])
    return {**common, "state": [node["base"], *node["flags"]], "free_mem": free, "alloc_idle_cpus": idle}


def squeue_doc(release: str, jobs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"meta": _meta(release), "errors": [], "warnings": [],
            "jobs": [job_record(j, release) for j in (JOBS if jobs is None else jobs)]}


def nodes_doc(release: str, nodes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"meta": _meta(release), "errors": [], "warnings": [],
            "nodes": [node_record(n, release) for n in (NODES if nodes is None else nodes)]}


# Not printed by any release's data_parser (checked against every 23.02 tag): the decoder
# tolerates plain numbers inside the verbose object all the same.
VERBOSE_EXIT_PLAIN = {"status": "ERROR", "return_code": 3, "signal": {"signal_id": 0, "name": ""}}


def with_changes(rows: list[dict[str, Any]], key: str, value: Any, **changes: Any) -> list[dict[str, Any]]:
    """A copy of ``rows`` where the row with ``key == value`` has ``changes`` applied."""
    out = copy.deepcopy(rows)
    for row in out:
        if row[key] == value:
            row.update(changes)
    return out
