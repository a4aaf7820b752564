"""PURE: ``sacct --json`` -> what accounting knows of a finished job, and its efficiency.

The monitor asks ``sacct`` (one batched call per history step, ``sacct_command``) about jobs
``squeue`` no longer lists or that just ended, so the history and the job page can say how a job
really ended and what it used; and, once after a restart, about every job that ended while it was
down (``gap_command``: one query for the time window, ended states only; ``gap`` uses it).

Shapes, from SchedMD's sources (tag slurm-22-05-8-1, src/plugins/openapi/dbv0.0.38/parse.c
``parse_job[]``; 23.02 on: src/plugins/data_parser/v0.0.39/parsers.c ``PARSER_ARRAY(JOB)``, the
same paths):

- ``job_id``; ``user``; ``account``; ``partition``; ``nodes``; ``working_directory``;
  ``qos`` (a name); ``array: {job_id, task_id}``;
- ``state: {current, reason}``: ``current`` a string to 23.02, a flag list from 23.11;
- ``exit_code`` (and ``derived_exit_code``): ``_dump_job_exit_code``: ``{"status":
  "PENDING"|"SUCCESS"|"SIGNALED"|"CORE_DUMPED"|"ERROR", "return_code", "signal": {"signal_id",
  "name"}}`` (``fields.decode_exit_code`` reads every release's form);
- ``time: {elapsed, start, end, submission, limit, suspended, total: {seconds, microseconds},
  user: {...}, system: {...}}``: plain numbers in v0.0.38, ``limit`` a number object from
  v0.0.39 (UINT32_NO_VAL);
- ``required: {CPUs, memory}`` (memory in MB; from v0.0.40 ``memory_per_cpu``/``memory_per_node``);
- ``tres: {allocated, requested}``: lists of ``{type, name, id, count}`` (``_dump_tres_list``;
  mem in MB);
- ``steps[]``: each with ``tres.requested.max``, the per-step TRESUsageInMax list
  (``_foreach_step`` -> ``_dump_tres_nct``), whose ``mem`` entry is the step's MaxRSS in bytes
  and ``gres/gpuutil`` (where the site gathers it) the GPU utilisation in percent.

A document that is not JSON, has no ``jobs`` list or a non-empty ``errors`` list raises
``snapshot.SnapshotError``. Records without a job id are skipped.
"""

from __future__ import annotations

import json
from datetime import datetime
from dataclasses import asdict, dataclass, replace
from typing import Any, Iterable, Mapping

from slurm_monitor.fields import (
    decode_exit_code,
    parse_memory_mb,
    parse_tres,
    split_job_state,
    unwrap_id,
    unwrap_int,
    unwrap_number,
    unwrap_time,
)
from slurm_monitor.snapshot import TERMINAL_JOB_STATES, SnapshotError, load_document

__all__ = ["Accounting", "SnapshotError", "efficiency", "gap_command", "parse_sacct", "sacct_command"]

# Job ids per ``sacct -j`` call: a command line stays far below ARG_MAX (10 digits + comma each).
SACCT_MAX_IDS = 500


@dataclass(frozen=True)
class Accounting:
    """A job as accounting recorded it; ``None``: accounting does not say."""

    job_id: str
    state: str
    state_flags: tuple[str, ...]
    reason: str | None
    exit_code: int | None
    signal: int | None
    submit_time: int | None
    start_time: int | None
    end_time: int | None
    elapsed_seconds: int | None
    time_limit_minutes: int | None
    cpus: int | None
    memory_mb: int | None  # requested (allocated when known)
    gpus: int
    total_cpu_seconds: float | None  # user + system CPU time of every step (sacct TotalCPU)
    max_rss_mb: float | None  # the largest step's MaxRSS
    gpu_util_percent: float | None
    account: str | None
    qos: str | None
    working_directory: str | None
    nodes: str | None
    # ``{"step", "name", "state", "exit_code", "signal", "elapsed_seconds", "nodes"}`` each, as
    # accounting recorded them (``steps[]``: ``step.id`` is "batch", "extern", "0" ... in every
    # release; 23.02 on may nest it as ``{"job_id", "step_id"}``).
    steps: tuple[dict[str, Any], ...] = ()
    # who and what: a job the monitor never saw (it ran and ended while the monitor was down,
    # ``gap``) gets its record from these
    user: str | None = None
    name: str | None = None
    partition: str | None = None
    array_job_id: str | None = None
    array_task_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state_flags"] = list(self.state_flags)
        data["steps"] = [dict(s) for s in self.steps]
        return data


def exit_codes_command(job_ids: Iterable[str]) -> list[str]:
    """22.05's text ``sacct`` has the exit codes its JSON lost (``parse_record``): one line
    ``<raw job id>|<code>:<signal>`` per job."""
    ids = [str(i) for i in job_ids][:SACCT_MAX_IDS]
    return ["sacct", "--allusers", "-X", "-n", "-P", "-o", "JobIDRaw,ExitCode", "-j", ",".join(ids)]


def parse_exit_codes(text: str) -> dict[str, tuple[int, int | None]]:
    """``exit_codes_command``'s output -> {job_id: (exit code, signal or None)}."""
    out: dict[str, tuple[int, int | None]] = {}
    for line in text.splitlines():
        job_id, _, codes = line.strip().partition("|")
        code, _, signal = codes.partition(":")
        if job_id.isdigit() and code.isdigit() and signal.isdigit():
            out[job_id] = (int(code), int(signal) or None)
    return out


def with_exit_codes(found: dict[str, Accounting], codes: Mapping[str, tuple[int, int | None]]) -> dict[str, Accounting]:
    """``found`` with the exit codes its JSON lost filled in from ``codes``."""
    return {job_id: replace(a, exit_code=codes[job_id][0], signal=a.signal or codes[job_id][1])
            if a.exit_code is None and job_id in codes else a for job_id, a in found.items()}


def slurm_time(seconds: float) -> str:
    """Unix seconds -> "2026-12-03T15:47:10", local time, as ``sacct -S/-E`` (Slurm's
    ``parse_time``) reads it; the monitor and the ``sacct`` it starts share a time zone."""
    return datetime.fromtimestamp(int(seconds)).strftime("%Y-%m-%dT%H:%M:%S")


# The ended states (``-s``/``state=``): with a window, Slurm selects a job in one of these
# whose end time falls inside it (as_mysql_jobacct_process.c ``_state_time_string``).
ENDED_STATES = ",".join(sorted(TERMINAL_JOB_STATES))


def window_args(start: float, end: float) -> list[str]:
    return ["-S", slurm_time(start), "-E", slurm_time(end), "-s", ENDED_STATES]


def gap_command(start: float, end: float) -> list[str]:
    """The one query for a monitor's downtime: every job that ended between ``start`` and
    ``end`` (Unix seconds), everyone's. ``-X``: the jobs without their steps (a third of the
    answer's size, measured on 22.05); their usage comes later, per job, through
    ``sacct_command`` (the history step), as for any ended job."""
    return ["sacct", "--json", "--allusers", "-X", *window_args(start, end)]


def gap_exit_codes_command(start: float, end: float) -> list[str]:
    """``exit_codes_command`` for the same window (22.05: the JSON lost the codes)."""
    return ["sacct", "--allusers", "-X", "-n", "-P", "-o", "JobIDRaw,ExitCode", *window_args(start, end)]


def sacct_command(job_ids: Iterable[str]) -> list[str]:
    """The one call for a batch of job ids (at most ``SACCT_MAX_IDS``). ``--allusers``: the
    monitor asks about everyone's jobs (root or an operator account sees them all)."""
    ids = [str(i) for i in job_ids][:SACCT_MAX_IDS]
    return ["sacct", "--json", "--allusers", "-j", ",".join(ids)]


def _tres(value: Any) -> dict[str, float]:
    """A TRES list ``[{type, name, count}]`` (or a "cpu=2,mem=4G" string) -> {"cpu": 2, "mem":
    4096, "gres/gpu": 1}. Names join type and name as Slurm prints them (``gres/gpu``)."""
    out: dict[str, float] = {}
    if isinstance(value, str):
        for key, text in parse_tres(value).items():
            number = parse_memory_mb(text) if key == "mem" else unwrap_number(_int_or_none(text))
            if number is not None:
                out[key] = number
        return out
    if not isinstance(value, list):
        return out
    for item in value:
        if not isinstance(item, dict):
            continue
        kind, name = str(item.get("type") or ""), str(item.get("name") or "")
        count = unwrap_number(item.get("count"))
        if not kind or count is None or count < 0:
            continue
        out[f"{kind}/{name}" if name else kind] = count
    return out


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _seconds(value: Any) -> float | None:
    if not isinstance(value, dict):
        return None
    seconds, micro = unwrap_number(value.get("seconds")), unwrap_number(value.get("microseconds"))
    if seconds is None:
        return None
    return float(seconds) + float(micro or 0) / 1e6


def _steps_cpu_seconds(steps: Any) -> float | None:
    """The steps' ``time.total`` (user + system CPU) added up; None without any."""
    found = [_seconds(_mapping(step.get("time")).get("total"))
             for step in (steps if isinstance(steps, list) else ()) if isinstance(step, dict)]
    values = [v for v in found if v is not None]
    return sum(values) if values else None


def _max_usage(steps: Any, key: str) -> float | None:
    best: float | None = None
    for step in steps if isinstance(steps, list) else ():
        if not isinstance(step, dict):
            continue
        tres = step.get("tres")
        requested = tres.get("requested") if isinstance(tres, dict) else None
        usage = _tres(requested.get("max")) if isinstance(requested, dict) else {}
        if key in usage and (best is None or usage[key] > best):
            best = usage[key]
    return best


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int)) and str(value) not in ("", "None") else None


def _mapping(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a JSON object, else an empty one (absent or malformed field)."""
    return value if isinstance(value, dict) else {}


def _requested_memory_mb(record: Mapping[str, Any], allocated: Mapping[str, float],
                         requested: Mapping[str, float]) -> int | None:
    for source in (allocated, requested):
        if "mem" in source:
            return int(source["mem"])
    required = record.get("required")
    if isinstance(required, dict):
        memory = unwrap_int(required.get("memory"))
        if memory is None:
            memory = unwrap_int(required.get("memory_per_node"))
        return memory
    return None


def _gpus(tres: Mapping[str, float]) -> int:
    if "gres/gpu" in tres:
        return int(tres["gres/gpu"])
    return int(sum(v for k, v in tres.items() if k.startswith("gres/gpu:")))


MAX_STEPS = 100  # per job, the first ones: the job page lists them


def _step_id(step: Mapping[str, Any]) -> str | None:
    ident = step.get("id")
    if isinstance(ident, dict):  # {"job_id", "step_id"}: step_id a name or a number
        ident = ident.get("step_id")
    return _text(ident) or _text(step.get("name"))


def parse_steps(steps: Any) -> tuple[dict[str, Any], ...]:
    """``steps[]`` of one sacct job -> the steps the job page lists (malformed ones skipped)."""
    out = []
    for item in steps if isinstance(steps, list) else ():
        if not isinstance(item, dict):
            continue
        step = _mapping(item.get("step"))
        ident = _step_id(step)
        if ident is None:
            continue
        state, _flags = split_job_state(item.get("state"))
        code, signal = decode_exit_code(item.get("exit_code"))
        nodes = _mapping(item.get("nodes"))
        out.append({"step": ident, "name": _text(step.get("name")), "state": state, "exit_code": code,
                    "signal": signal, "elapsed_seconds": unwrap_int(_mapping(item.get("time")).get("elapsed")),
                    "nodes": _text(nodes.get("range"))})
        if len(out) >= MAX_STEPS:
            break
    return tuple(out)


def parse_record(record: Mapping[str, Any], exit_status_lost: bool = False) -> Accounting | None:
    """One job of ``sacct --json``. ``exit_status_lost``: the document comes from 22.05's
    openapi/dbv0.0.38, whose ``_dump_job_exit_code`` writes ``{"status": "SUCCESS",
    "return_code": 0}`` for every job that exited (WIFEXITED), whatever its code (a job that
    ran ``exit 3`` included; signals are right): then the code is 0 only for a COMPLETED job
    and unknown (None) otherwise (``collector`` asks ``sacct``'s text output for it)."""
    job_id = unwrap_id(record.get("job_id"))
    if job_id is None:
        return None
    state_obj = _mapping(record.get("state"))
    state, flags = split_job_state(state_obj.get("current"))
    exit_code, signal = decode_exit_code(record.get("exit_code"))
    status = _mapping(record.get("exit_code")).get("status")
    if exit_status_lost and status == "SUCCESS" and state != "COMPLETED":
        exit_code = None
    times = _mapping(record.get("time"))
    tres = _mapping(record.get("tres"))
    allocated, requested = _tres(tres.get("allocated")), _tres(tres.get("requested"))
    required = _mapping(record.get("required"))
    cpus = int(allocated["cpu"]) if "cpu" in allocated else unwrap_int(required.get("CPUs"))
    total = _seconds(times.get("total"))
    if total is None:
        parts = [_seconds(times.get("user")), _seconds(times.get("system"))]
        total = sum(p for p in parts if p is not None) if any(p is not None for p in parts) else None
    # 22.05 leaves the job's own time.total at 0 and puts the CPU time on its steps (the
    # batch step, srun steps; sacct's TotalCPU line for the job sums them): the larger of
    # the two, never their sum (where a release fills both, the job's includes its steps).
    steps_total = _steps_cpu_seconds(record.get("steps"))
    if steps_total is not None and (total is None or steps_total > total):
        total = steps_total
    rss_bytes = _max_usage(record.get("steps"), "mem")
    reason = state_obj.get("reason")
    array = _mapping(record.get("array"))
    array_job_id = unwrap_id(array.get("job_id")) or None  # 0: not an array task
    return Accounting(
        job_id=str(job_id),
        state=state,
        state_flags=flags,
        reason=str(reason) if reason and reason != "None" else None,
        exit_code=exit_code,
        signal=signal,
        submit_time=unwrap_time(times.get("submission")),
        start_time=unwrap_time(times.get("start")),
        end_time=unwrap_time(times.get("end")),
        elapsed_seconds=unwrap_int(times.get("elapsed")),
        time_limit_minutes=unwrap_int(times.get("limit")),
        cpus=cpus,
        memory_mb=_requested_memory_mb(record, allocated, requested),
        gpus=_gpus(allocated or requested),
        total_cpu_seconds=total,
        max_rss_mb=round(rss_bytes / (1024 * 1024), 1) if rss_bytes is not None else None,
        gpu_util_percent=_max_usage(record.get("steps"), "gres/gpuutil"),
        account=_text(record.get("account")),
        qos=_text(record.get("qos")),
        working_directory=_text(record.get("working_directory")),
        nodes=_text(record.get("nodes")),
        steps=parse_steps(record.get("steps")),
        user=_text(record.get("user")),
        name=_text(record.get("name")),
        partition=_text(record.get("partition")),
        array_job_id=str(array_job_id) if array_job_id else None,
        array_task_id=unwrap_id(array.get("task_id")) if array_job_id else None,
    )


# ESLURM_REST_EMPTY_RESULT (slurm_errno.h): "Nothing found with query". 22.05's sacct --json
# (and slurmrestd's /slurmdb/ jobs) report it as an error, exit 0, when accounting knows none of
# the ids asked (yet): an empty answer, not a failure.
EMPTY_RESULT = 9003


def _without_empty_result(raw: str | bytes | Mapping[str, Any]) -> Any:
    if isinstance(raw, (str, bytes)):
        try:
            raw = json.loads(raw)
        except ValueError:
            return raw  # load_document names the problem
    if not isinstance(raw, dict) or not isinstance(raw.get("errors"), list):
        return raw
    errors = raw["errors"]
    rest = [e for e in errors if not (isinstance(e, dict) and e.get("error_number") == EMPTY_RESULT)]
    return {**raw, "errors": rest} if len(rest) != len(errors) else raw


def parse_sacct(raw: str | bytes | Mapping[str, Any]) -> dict[str, Accounting]:
    """``sacct --json`` output -> {job_id: Accounting}. Raises SnapshotError when broken. A job
    listed twice (requeued: one record per run) keeps the last record."""
    out: dict[str, Accounting] = {}
    doc = _without_empty_result(raw)
    plugin = _mapping(_mapping(_mapping(doc).get("meta")).get("plugin")).get("type")
    for record in load_document(doc, "jobs"):
        parsed = parse_record(record, exit_status_lost=plugin == "openapi/dbv0.0.38")
        if parsed is not None:
            out[parsed.job_id] = parsed
    return out


def _percent(used: float | None, available: float | None) -> float | None:
    if used is None or not available or available <= 0:
        return None
    return round(used / available * 100.0, 1)


def efficiency(accounting: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Used against requested, from an ``Accounting.as_dict()``; None without accounting.

    ``cpu``: TotalCPU against elapsed x CPUs; ``memory``: the largest step's MaxRSS against the
    requested memory; ``gpu``: the utilisation Slurm gathered (``gres/gpuutil``), where the site
    gathers it. Each figure is null when accounting does not give what it needs."""
    if not accounting:
        return None
    elapsed, cpus = accounting.get("elapsed_seconds"), accounting.get("cpus")
    available = elapsed * cpus if elapsed is not None and cpus else None
    used = accounting.get("total_cpu_seconds")
    rss, requested_mb = accounting.get("max_rss_mb"), accounting.get("memory_mb")
    gpus = accounting.get("gpus") or 0
    return {
        "cpu": {"used_seconds": used, "available_seconds": available,
                "percent": _percent(used, available)},
        "memory": {"max_rss_mb": rss, "requested_mb": requested_mb,
                   "percent": _percent(rss, requested_mb)},
        "gpu": {"requested": gpus,
                "percent": accounting.get("gpu_util_percent") if gpus else None},
    }
