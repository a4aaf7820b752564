"""One ``squeue --json`` fixture per data_parser version, v0.0.38 (22.05) to v0.0.44 (25.11).

Each holds the same five jobs: a failed job (exit 3), a job killed by a signal (9), and an
array 3 (``--array=1-4`` on a 2-CPU node): task 3_1 running, task 3_2 cancelled and still
COMPLETING, tasks 3_[3-4] pending (reason Resources) in one record. v0.0.38 is real output
(Debian's slurm-wlm 22.05.8, captured on the one-node cluster: ``sbatch --wrap 'exit 3'``,
``--wrap 'kill -KILL $$'``, ``--array=1-4``, then
``scancel`` of task 2): fixtures/squeue-22.05-array-completing.json. The others are written
here field by field from SchedMD's sources (git tags slurm-23-02-7-1, slurm-23-11-10-1,
slurm-24-05-8-1, slurm-24-11-7-1, slurm-25-05-8-1, slurm-25-11-7-1), file
``src/plugins/data_parser/v0.0.XX/parsers.c``, ``PARSER_ARRAY(JOB_INFO)`` and the DUMP_FUNC
of each type; ``python -m tests.slurm_monitor.releases`` writes them to fixtures/ as
squeue-v0.0.XX.json (test_snapshot checks the files match this module).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
NO_VAL = 4294967294
NO_VAL16 = 65534
VERSIONS = ("v0.0.38", "v0.0.39", "v0.0.40", "v0.0.41", "v0.0.42", "v0.0.43", "v0.0.44")
RELEASE_OF = {"v0.0.38": "22.05.8", "v0.0.39": "23.02.7", "v0.0.40": "23.11.10", "v0.0.41": "24.05.8",
              "v0.0.42": "24.11.7", "v0.0.43": "25.05.8", "v0.0.44": "25.11.7"}
REAL_2205 = "squeue-22.05-array-completing.json"

# The real capture's jobs, in its order. raw: what slurmctld holds in job->exit_code (a wait(2)
# status; 22.05 printed 0 for the pending and the still-completing jobs). limit None: unlimited.
JOBS: list[dict[str, Any]] = [
    dict(id=1, name="exit3", state="FAILED", flag=None, reason="NonZeroExitCode", raw=3 << 8,
         array=0, task=NO_VAL, tasks="", nodes="vm", submit=1796300606, start=1796300606,
         end=1796300606, limit=525600),
    dict(id=2, name="killed", state="FAILED", flag=None, reason="JobLaunchFailure", raw=9,
         array=0, task=NO_VAL, tasks="", nodes="vm", submit=1796300606, start=1796300606,
         end=1796300606, limit=525600),
    dict(id=4, name="arr", state="RUNNING", flag=None, reason="None", raw=0,
         array=3, task=1, tasks="", nodes="vm", submit=1796300609, start=1796300609,
         end=1827836609, limit=None),
    dict(id=5, name="arr", state="CANCELLED", flag="COMPLETING", reason="None", raw=0,
         array=3, task=2, tasks="", nodes="vm", submit=1796300609, start=1796300609,
         end=1796300616, limit=None),
    dict(id=3, name="arr", state="PENDING", flag=None, reason="Resources", raw=0,
         array=3, task=NO_VAL, tasks="3-4", nodes="", submit=1796300609, start=0, end=0, limit=None),
]


def no_val(value: int, infinite: bool = False) -> dict[str, Any]:
    """DUMP_FUNC(UINT32_NO_VAL) / (UINT64_NO_VAL) / (UINT16_NO_VAL), v0.0.39 on: NO_VAL ->
    set false; INFINITE -> infinite true; else set true with the number."""
    if infinite:
        return {"set": False, "infinite": True, "number": 0}
    if value in (NO_VAL, NO_VAL16):
        return {"set": False, "infinite": False, "number": 0}
    return {"set": True, "infinite": False, "number": value}


def job_state_string(job: dict[str, Any]) -> str:
    """job_state_string() (src/common/slurm_protocol_defs.c): a flag, when set, hides the base."""
    return job["flag"] or job["state"]


def process_exit_code(raw: int) -> dict[str, Any]:
    """DUMP_FUNC(PROCESS_EXIT_CODE), v0.0.40..v0.0.44 (identical in all five): NO_VAL ->
    PENDING; WIFEXITED -> return_code WEXITSTATUS, SUCCESS or ERROR; WIFSIGNALED -> SIGNALED,
    signal WTERMSIG, return_code stays NO_VAL. PARSER_ARRAY(PROCESS_EXIT_CODE_VERBOSE):
    status a flag array (addfa), return_code UINT32_NO_VAL, signal/id UINT16_NO_VAL,
    signal/name DUMP_FUNC(SIGNAL): sig_num2name() ("KILL", "TERM"), "" for NO_VAL16."""
    code, signal = NO_VAL, NO_VAL16
    if raw == NO_VAL:
        status = "PENDING"
    elif raw & 0x7F == 0:
        code = (raw >> 8) & 0xFF
        status = "ERROR" if code else "SUCCESS"
    else:
        status, signal = "SIGNALED", raw & 0x7F
    name = {9: "KILL", 15: "TERM"}.get(signal, "")
    return {"status": [status], "return_code": no_val(code), "signal": {"id": no_val(signal), "name": name}}


def common(job: dict[str, Any]) -> dict[str, Any]:
    # STRING in every version: name, partition, nodes, tres_*_str, array_task_string;
    # user_name: add_parse_overload(USER_ID, user_id, 1, "user_name"); state_reason: JOB_REASON
    # (job_reason_string(): "None" when there is no reason).
    return {"account": "", "name": job["name"], "partition": "debug", "user_id": 0, "user_name": "root",
            "group_name": "root", "nodes": job["nodes"], "state_reason": job["reason"],
            "tres_req_str": "cpu=1,mem=21694M,node=1,billing=1",
            "tres_alloc_str": "cpu=1,node=1,billing=1" if job["nodes"] else "",
            "array_task_string": job["tasks"], "last_sched_evaluation": 1796300609}


def limit(job: dict[str, Any]) -> dict[str, Any]:
    # UINT32_NO_VAL time_limit: INFINITE (no limit) -> infinite true
    return no_val(job["limit"], infinite=True) if job["limit"] is None else no_val(job["limit"])


def job_v39(job: dict[str, Any]) -> dict[str, Any]:
    """v0.0.39 (23.02.4-23.02.8)."""
    return {
        **common(job),
        "job_id": job["id"],  # add_parse(UINT32, job_id, "job_id"): plain
        "array_job_id": no_val(job["array"]),  # UINT32_NO_VAL; 0 when not an array
        "array_task_id": no_val(job["task"]),  # UINT32_NO_VAL; NO_VAL when not a task
        "job_state": job_state_string(job),  # add_parse(JOB_STATE, ...): job_state_string()
        "exit_code": no_val(job["raw"]),  # UINT32_NO_VAL (UINT32 plain in 23.02.0-3): raw status
        "derived_exit_code": no_val(0),
        "cpus": no_val(1), "node_count": no_val(1),  # UINT32_NO_VAL num_cpus, num_nodes
        "time_limit": limit(job),
        "submit_time": job["submit"],  # add_parse(UINT64, submit_time, ...): plain
        "start_time": job["start"], "end_time": job["end"],  # UINT64: plain
    }


def job_v40(job: dict[str, Any]) -> dict[str, Any]:
    """v0.0.40 (23.11) to v0.0.44 (25.11): the fields the monitor reads are encoded the same."""
    state = [job["state"], job["flag"]] if job["flag"] else [job["state"]]
    return {
        **common(job),
        "job_id": job["id"],  # UINT32 (v0.0.44: step_id.job_id, still UINT32): plain
        "array_job_id": no_val(job["array"]),  # UINT32_NO_VAL
        "array_task_id": no_val(job["task"]),  # UINT32_NO_VAL
        # v0.0.40-42: add_parse_bit_flag_array(..., JOB_STATE, ...); v0.0.43-44:
        # add_parse(JOB_STATE, ...) with addfa(JOB_STATE): both dump PARSER_FLAG_ARRAY(JOB_STATE)
        # in order: the base state (add_flag_eq on JOB_STATE_BASE) then each flag set.
        "job_state": state,
        "exit_code": process_exit_code(job["raw"]),  # add_parse(PROCESS_EXIT_CODE, exit_code, ...)
        "derived_exit_code": process_exit_code(0),
        "cpus": no_val(1), "node_count": no_val(1),
        "time_limit": limit(job),
        "submit_time": no_val(job["submit"]),  # TIMESTAMP_NO_VAL -> DUMP(UINT64_NO_VAL)
        "start_time": no_val(job["start"]), "end_time": no_val(job["end"]),
    }


def meta(version: str) -> dict[str, Any]:
    release = RELEASE_OF[version]
    major, minor, micro = release.split(".")
    if version == "v0.0.39":
        return {"plugin": {"type": "openapi/v0.0.39", "name": "Slurm OpenAPI v0.0.39"},
                "Slurm": {"version": {"major": int(major), "micro": int(micro), "minor": int(minor)},
                          "release": release}}
    # PARSER_ARRAY(OPENAPI_META), v0.0.40 on: every version field a STRING.
    return {"plugin": {"type": "", "name": "", "data_parser": f"data_parser/{version}",
                       "accounting_storage": ""},
            "client": {"source": "/dev/pts/0", "user": "root", "group": "root"},
            "command": ["--json"],
            "slurm": {"version": {"major": major, "micro": micro, "minor": minor},
                      "release": release, "cluster": "box"}}


def squeue_doc(version: str) -> dict[str, Any]:
    if version == "v0.0.38":
        return json.loads((FIXTURES / REAL_2205).read_text())
    build = job_v39 if version == "v0.0.39" else job_v40
    doc = {"jobs": [build(j) for j in JOBS], "meta": meta(version), "errors": [], "warnings": []}
    if version != "v0.0.39":  # OPENAPI_JOB_INFO_RESP, v0.0.40 on
        doc.update(last_backfill=no_val(1796300610), last_update=no_val(1796300616))
    return doc


def fixture_name(version: str) -> str:
    return REAL_2205 if version == "v0.0.38" else f"squeue-{version}.json"


def write_fixtures() -> None:
    for version in VERSIONS[1:]:
        (FIXTURES / fixture_name(version)).write_text(json.dumps(squeue_doc(version), indent=2) + "\n")


if __name__ == "__main__":
    write_fixtures()
