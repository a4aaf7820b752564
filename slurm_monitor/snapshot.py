"""PURE: normalise Slurm's JSON (every release 22.05 to 25.11) into frozen Job and Node records.

Input: the decoded output of ``squeue --json``, ``sinfo --json`` (22.05) or
``scontrol show nodes --json`` (23.02 on). The shapes differ by release and this module (with
its field decoders, ``fields``) is the only place that knows it:

- numbers are plain or ``{"set", "infinite", "number"}``; timestamps too;
- ``job_state`` is a string (22.05, 23.02: a flag such as COMPLETING hides the base state) or
  a list with the base state first, then flags (23.11 on): ``Job.state`` is the base state,
  ``Job.state_flags`` the flags;
- ``exit_code`` is a raw wait status (exit 3 -> 768), the same wrapped in a number object
  (23.02.4 on) or ``{"status", "return_code", "signal"}`` (23.11 on);
- array tasks carry ``array_job_id``/``array_task_id``; a pending array's still-unsplit tasks
  are one record whose ``array_task_string`` lists them ("3-4");
- node ``state`` is lower-case with ``state_flags`` (22.05) or an upper-case list;
- ``free_memory``/``free_mem`` and ``idle_cpus``/``alloc_idle_cpus`` were renamed;
- Slurm's sentinels (NO_VAL, INFINITE, NO_VAL16, -2) mean "unknown" and become ``None``.

Encodings come from SchedMD's sources (tags slurm-XX-YY-Z-1): 22.05 openapi/v0.0.38/jobs.c
``dump_job_info()``, 23.02-25.11 data_parser/v0.0.39..v0.0.44/parsers.c ``PARSER_ARRAY(JOB_INFO)``;
cited next to the code reading each field (here and in ``fields``). ``cache.JobParser`` adds a
memory of the last poll.

Output is stable whatever the release. Output that is broken (not JSON, no record list, or a
non-empty ``errors`` list, which is how ``squeue --json`` reports an unreachable controller
while exiting 0 with no jobs) raises ``SnapshotError``: a broken poll must never look like
"all jobs ended".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from slurm_monitor.fields import (
    decode_exit_code,
    normalise_job_state,
    normalise_node_state,
    parse_gres_gpus,
    parse_memory_mb,
    parse_tres,
    split_job_state,
    tres_gpus,
    unwrap_id,
    unwrap_int,
    unwrap_number,
    unwrap_time,
)

# The decoders are re-exported: callers that read records as snapshot does import them from here.
__all__ = [
    "JOB_FIELDS", "NODE_FIELDS", "TERMINAL_JOB_STATES", "UNAVAILABLE_NODE_STATES", "Job", "Node",
    "SnapshotError", "load_document", "percent", "parse_job", "parse_jobs", "parse_node", "parse_nodes",
    "slurm_release", "decode_exit_code", "normalise_job_state", "normalise_node_state",
    "parse_gres_gpus", "parse_memory_mb", "parse_tres", "split_job_state", "tres_gpus",
    "unwrap_id", "unwrap_int", "unwrap_number", "unwrap_time",
]


TERMINAL_JOB_STATES: frozenset[str] = frozenset({
    "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
    "PREEMPTED", "BOOT_FAIL", "DEADLINE",
})
# Node states after normalisation that mean "not usable".
UNAVAILABLE_NODE_STATES: frozenset[str] = frozenset({"DOWN", "DRAINED", "DRAINING", "FAIL", "FAILING"})


class SnapshotError(ValueError):
    """The command's output cannot be trusted as a full picture of the cluster."""


@dataclass(frozen=True, slots=True)
class Job:
    job_id: str
    name: str
    user: str
    partition: str
    state: str  # upper case: PENDING, RUNNING, COMPLETING, COMPLETED, FAILED, ...
    reason: str | None
    nodes: str
    node_count: int | None
    cpus: int | None
    gpus: int
    memory_mb: int | None
    submit_time: int | None  # unix seconds
    start_time: int | None
    end_time: int | None  # only once the job has finished
    time_limit_minutes: int | None  # None: unlimited or unknown
    exit_code: int | None  # the process's own exit code (768 -> 3); only once finished
    signal: int | None  # the signal that ended it, if any (the job's exit signal)
    # Flags after the base state (23.11 on), e.g. ("COMPLETING",). 22.05/23.02 print a flag in
    # place of the base state: then ``state`` is that flag (the base is unknown) and it is here too.
    state_flags: tuple[str, ...] = ()
    array_job_id: str | None = None  # the array's id ("10" of 10_1); None: not an array job
    array_task_id: int | None = None  # None for a pending record that stands for several tasks
    array_tasks: str | None = None  # those tasks, as Slurm lists them ("3-4", "5-99%4")
    # Where Slurm reports them (None: not reported, or empty): the job page shows them.
    account: str | None = None
    qos: str | None = None
    working_directory: str | None = None
    stdout_path: str | None = None
    stderr_path: str | None = None
    dependency: str | None = None

    def __post_init__(self) -> None:
        if type(self.state_flags) is not tuple:  # a record loaded back from JSON has a list
            object.__setattr__(self, "state_flags", tuple(self.state_flags))

    @property
    def display_id(self) -> str:
        """The id ``sbatch``/``squeue`` print: "10_1" for an array task, "10_[3-4]" for its
        pending tasks, the job id otherwise."""
        if self.array_job_id is None:
            return self.job_id
        if self.array_task_id is not None:
            return f"{self.array_job_id}_{self.array_task_id}"
        return f"{self.array_job_id}_[{self.array_tasks or ''}]"

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_JOB_STATES


@dataclass(frozen=True)
class Node:
    name: str
    state: str  # IDLE, MIXED, ALLOCATED, DOWN, DRAINED, DRAINING, FAIL, FAILING, UNKNOWN, ...
    flags: tuple[str, ...]  # remaining upper-case flags, sorted (e.g. NOT_RESPONDING)
    reason: str | None
    partitions: tuple[str, ...]
    cpus: int
    alloc_cpus: int
    cpu_load: float | None  # load average as reported by the OS (Slurm's cpu_load / 100)
    real_memory_mb: int
    alloc_memory_mb: int
    free_memory_mb: int | None
    gpus: int
    alloc_gpus: int

    @property
    def cpu_alloc_percent(self) -> float:
        return percent(self.alloc_cpus, self.cpus)

    @property
    def cpu_load_percent(self) -> float | None:
        if self.cpu_load is None or self.cpus <= 0:
            return None
        return round(self.cpu_load / self.cpus * 100.0, 1)

    @property
    def memory_alloc_percent(self) -> float:
        return percent(self.alloc_memory_mb, self.real_memory_mb)

    @property
    def gpu_alloc_percent(self) -> float:
        return percent(self.alloc_gpus, self.gpus)


def percent(part: int, whole: int) -> float:
    """``part`` of ``whole`` in percent, one decimal, at most 100; 0 when ``whole`` is not positive."""
    return round(min(100.0, part / whole * 100.0), 1) if whole > 0 else 0.0


# --- documents ----------------------------------------------------------------------------


def load_document(raw: str | bytes | Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    """Decode a Slurm JSON document and return its ``key`` list, or raise SnapshotError."""
    if isinstance(raw, (str, bytes)):
        if not raw.strip():
            raise SnapshotError("empty output")
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise SnapshotError(f"output is not JSON: {exc}") from None
    else:
        doc = raw
    if not isinstance(doc, dict):
        raise SnapshotError("output is not a JSON object")
    errors = doc.get("errors")
    if isinstance(errors, list) and errors:
        first = errors[0] if isinstance(errors[0], dict) else {"error": str(errors[0])}
        detail = first.get("description") or first.get("error") or "unknown error"
        raise SnapshotError(f"Slurm reported {len(errors)} error(s): {detail}")
    records = doc.get(key)
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise SnapshotError(f"output has no {key!r} list")
    return records


def parse_job(record: Mapping[str, Any]) -> Job:
    """One squeue job record (any release) -> Job. Raises SnapshotError without a job id.

    Encodings, per field (22.05: v0.0.38 ``dump_job_info``; 23.02+: v0.0.39..v0.0.44
    ``PARSER_ARRAY(JOB_INFO)``), all handled by ``unwrap_*``:
    ``job_id`` plain int in every release (``add_parse(UINT32, job_id, ...)``; 25.11:
    ``step_id.job_id``); ``cpus``, ``node_count``, ``time_limit``, ``array_job_id``,
    ``array_task_id`` plain or null in 22.05, UINT32_NO_VAL objects from 23.02;
    ``submit_time``/``start_time``/``end_time`` plain (UINT64) to 23.02, TIMESTAMP_NO_VAL
    objects from 23.11; ``job_state`` JOB_STATE string to 23.02, a flag array from 23.11
    (``split_job_state``); ``exit_code`` see ``decode_exit_code``; ``state_reason`` the
    JOB_REASON string ("None" when there is none); ``array_task_string`` STRING everywhere;
    ``account``, ``qos``, ``current_working_directory``, ``standard_output``,
    ``standard_error``, ``dependency`` STRING everywhere, "" when unset (22.05's squeue leaves
    the output paths and the dependency empty even when set; 23.02 on fill them)."""
    job_id = unwrap_id(record.get("job_id"))
    if job_id is None:
        raise SnapshotError("a job record has no job_id")
    state, flags = split_job_state(record.get("job_state"))
    finished = state in TERMINAL_JOB_STATES
    allocated = parse_tres(record.get("tres_alloc_str"))
    requested = parse_tres(record.get("tres_req_str"))
    exit_code, signal = decode_exit_code(record.get("exit_code")) if finished else (None, None)
    reason = record.get("state_reason")
    user = record.get("user_name") or (str(record["user_id"]) if "user_id" in record else "")
    # "Job ID of job array, or 0 if N/A" (v0.0.41 description); 22.05 prints 0 too.
    array_job_id = unwrap_id(record.get("array_job_id")) or None
    # NO_VAL (null in 22.05, set: false later) on a non-array job and on the pending record
    # that still holds several tasks, whose ids are then in array_task_string.
    array_task_id = unwrap_id(record.get("array_task_id")) if array_job_id else None
    tasks = record.get("array_task_string") if array_job_id and array_task_id is None else None
    return Job(
        job_id=str(job_id),
        name=str(record.get("name") or ""),
        user=str(user or "unknown"),
        partition=str(record.get("partition") or ""),
        state=state,
        reason=str(reason) if reason and reason != "None" else None,
        nodes=str(record.get("nodes") or ""),
        node_count=unwrap_int(record.get("node_count")),
        cpus=unwrap_int(record.get("cpus")),
        gpus=tres_gpus(allocated or requested),
        memory_mb=parse_memory_mb(allocated.get("mem") or requested.get("mem")),
        submit_time=unwrap_time(record.get("submit_time")),
        start_time=unwrap_time(record.get("start_time")),
        # end_time is the projected end while a job runs ("End time, real or expected").
        end_time=unwrap_time(record.get("end_time")) if finished else None,
        time_limit_minutes=unwrap_int(record.get("time_limit")),
        exit_code=exit_code,
        signal=signal,
        state_flags=flags,
        array_job_id=str(array_job_id) if array_job_id else None,
        array_task_id=array_task_id,
        array_tasks=str(tasks) if tasks else None,
        account=_text(record.get("account")),
        qos=_text(record.get("qos")),
        working_directory=_text(record.get("current_working_directory")),
        stdout_path=_text(record.get("standard_output")),
        stderr_path=_text(record.get("standard_error")),
        dependency=_text(record.get("dependency")),
    )


def _text(value: Any) -> str | None:
    """A string field Slurm may leave empty, print as "(null)" or omit -> the text or None."""
    if not isinstance(value, str) or value.strip() in ("", "(null)", "None"):
        return None
    return value.strip()[:4096]


# Every field parse_job reads: the raw values of these are a job record's fingerprint.
JOB_FIELDS: tuple[str, ...] = (
    "job_id", "name", "user_name", "user_id", "partition", "job_state", "state_reason", "nodes",
    "node_count", "cpus", "tres_alloc_str", "tres_req_str", "submit_time", "start_time",
    "end_time", "time_limit", "exit_code", "array_job_id", "array_task_id", "array_task_string",
    "account", "qos", "current_working_directory", "standard_output", "standard_error", "dependency",
)
NODE_FIELDS: tuple[str, ...] = (
    "name", "hostname", "state", "state_flags", "cpus", "alloc_cpus", "alloc_idle_cpus",
    "idle_cpus", "cpu_load", "free_mem", "free_memory", "partitions", "reason", "gres",
    "gres_used", "real_memory", "alloc_memory",
)


def parse_node(record: Mapping[str, Any]) -> Node:
    """One sinfo (22.05) or scontrol (23.02+) node record -> Node."""
    name = record.get("name") or record.get("hostname")
    if not name:
        raise SnapshotError("a node record has no name")
    state, flags = normalise_node_state(record.get("state"), record.get("state_flags", ()))
    cpus = unwrap_int(record.get("cpus")) or 0
    alloc_cpus = unwrap_int(record.get("alloc_cpus"))
    if alloc_cpus is None:
        idle = unwrap_int(record.get("alloc_idle_cpus", record.get("idle_cpus")))
        alloc_cpus = max(0, cpus - idle) if idle is not None else 0
    load = unwrap_number(record.get("cpu_load"))
    free = unwrap_int(record.get("free_mem", record.get("free_memory")))
    partitions = record.get("partitions") or ()
    if isinstance(partitions, str):
        partitions = [p for p in partitions.split(",") if p]
    reason = record.get("reason")
    gpus = parse_gres_gpus(record.get("gres"))
    return Node(
        name=str(name),
        state=state,
        flags=flags,
        reason=str(reason) if reason else None,
        partitions=tuple(str(p) for p in partitions),
        cpus=cpus,
        alloc_cpus=min(alloc_cpus, cpus) if cpus else alloc_cpus,
        cpu_load=round(load / 100.0, 2) if load is not None else None,
        real_memory_mb=unwrap_int(record.get("real_memory")) or 0,
        alloc_memory_mb=unwrap_int(record.get("alloc_memory")) or 0,
        free_memory_mb=free,
        gpus=gpus,
        alloc_gpus=min(parse_gres_gpus(record.get("gres_used")), gpus),
    )


def parse_jobs(raw: str | bytes | Mapping[str, Any]) -> dict[str, Job]:
    """``squeue --json`` output -> {job_id: Job}. Raises SnapshotError when broken."""
    jobs = (parse_job(r) for r in load_document(raw, "jobs"))
    return {job.job_id: job for job in jobs}


def parse_nodes(raw: str | bytes | Mapping[str, Any]) -> dict[str, Node]:
    """``sinfo --json`` (22.05) or ``scontrol show nodes --json`` -> {name: Node}.

    A document with no nodes at all is broken: a cluster always has nodes."""
    nodes = [parse_node(r) for r in load_document(raw, "nodes")]
    if not nodes:
        raise SnapshotError("output lists no nodes")
    return {node.name: node for node in nodes}


def slurm_release(raw: str | bytes | Mapping[str, Any]) -> str | None:
    """The ``meta`` release string ("22.05.8"), whichever capitalisation the release uses."""
    try:
        doc = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
        meta = doc.get("meta", {})
        slurm = meta.get("slurm") or meta.get("Slurm") or {}
        return slurm.get("release")
    except (ValueError, AttributeError):
        return None
