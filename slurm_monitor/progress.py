"""PURE: what the scheduler and the nodes say about a job someone is watching, and the gentle
note about a finished job that asked for far more than it used (issue 14).

- ``start_command(ids)`` / ``parse_start``: the scheduler's start estimate of pending jobs, one
  ``squeue --start`` for all of them. The text format, on every release: on 22.05 ``squeue
  --json`` ignores ``-j``, ``--start`` and ``--states`` (checked on this machine's 22.05.8: it
  dumps the whole queue), so its cost would grow with the queue, not with what is watched.
  ``%S`` is the expected start in the local time of the ``squeue`` process, i.e. the monitor's
  own (a child inherits ``TZ``), "N/A" when the scheduler has none yet (e.g. a held job).
- ``sstat_command(ids)`` / ``parse_sstat``: live usage of running jobs' steps, one ``sstat``
  call (22.05's ``sstat`` has no ``--json``: ``-P`` pipe-separated text). Needs a
  ``JobAcctGatherType`` other than ``none``: without it ``sstat`` prints zero tasks and a
  garbage ``AveCPU`` (seen here: ``213503982334-14:25:51``), which this parser discards.
- ``live_efficiency(job, usage, now)``: the same shape as ``sacct.efficiency`` (cpu, memory, gpu).
- ``low_usage(accounting, fraction)``: the note's figures when a finished job used under
  ``fraction`` of the CPU or memory it asked for, else None.
- ``build_job_progress`` / ``build_low_usage_notification``: the event and the notification.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping

from slurm_monitor.events import JOBS, Notification, Publication, iso
from slurm_monitor.sacct import efficiency
from slurm_monitor.fields import parse_memory_mb, parse_tres
from slurm_monitor.snapshot import Job

# Job ids per command: far below ARG_MAX, and what one monitor cycle asks about at most.
MAX_IDS = 500
SSTAT_FIELDS = "JobID,NTasks,AveCPU,MaxRSS,TRESUsageInTot"
# A finished job shorter than this gets no note: its figures say little and nobody waited.
LOW_USAGE_MIN_SECONDS = 60
# A CPU figure above what the allocation could have used (by this factor) is not a measurement.
_IMPOSSIBLE = 1.5


def _ids(job_ids: Iterable[str]) -> str:
    return ",".join(str(i) for i in list(job_ids)[:MAX_IDS])


def start_command(job_ids: Iterable[str]) -> list[str]:
    return ["squeue", "--start", "--noheader", "--format", "%i|%S", "-j", _ids(job_ids)]


def sstat_command(job_ids: Iterable[str]) -> list[str]:
    return ["sstat", "--allsteps", "--parsable2", "--noheader", "--format", SSTAT_FIELDS,
            "-j", _ids(job_ids)]


def parse_start(text: str) -> dict[str, int | None]:
    """``squeue --start --format %i|%S`` -> {printed id: Unix seconds or None}. The printed id
    is the job id, or "10_1" for an array task. Lines it cannot read are skipped."""
    out: dict[str, int | None] = {}
    for line in text.splitlines():
        printed, sep, when = line.strip().partition("|")
        if not sep or not printed:
            continue
        out[printed] = parse_local_time(when.strip())
    return out


def parse_local_time(text: str) -> int | None:
    """Slurm's default time format, "2026-12-03T16:00:00" (local time) -> Unix seconds;
    "N/A", "Unknown", "None" or anything else -> None."""
    try:
        return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").timestamp())
    except ValueError:
        return None


_DURATION = re.compile(r"(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)")


def parse_duration(text: str) -> float | None:
    """Slurm's elapsed/CPU time, "[DD-][HH:]MM:SS[.mmm]" -> seconds; None when unreadable."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        return None
    days, hours, minutes, seconds = match.groups()
    return (int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds))


@dataclass(frozen=True)
class StepUsage:
    """One job's running steps added up: CPU seconds used so far (None: unknown) and the
    largest step's resident memory (MB, None: unknown)."""

    cpu_seconds: float | None
    max_rss_mb: float | None


def parse_sstat(text: str) -> dict[str, StepUsage]:
    """``sstat -P -n -o`` ``SSTAT_FIELDS`` -> {printed job id: StepUsage}. A step reporting no task
    (no accounting gathered) tells nothing and is skipped; a job with no readable step is absent."""
    cpu: dict[str, float] = {}
    rss: dict[str, float] = {}
    seen: set[str] = set()
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 5 or not fields[0]:
            continue
        step_id, tasks, ave_cpu, max_rss, tres_text = fields
        job_id = step_id.split(".", 1)[0]  # "12" or, for an array task, "10_1"
        try:
            if int(tasks) <= 0:
                continue
        except ValueError:
            continue
        seen.add(job_id)
        tres = parse_tres(tres_text) if tres_text else {}
        seconds = parse_duration(tres["cpu"]) if "cpu" in tres else None
        if seconds is None:  # AveCPU is per task
            average = parse_duration(ave_cpu)
            seconds = average * int(tasks) if average is not None else None
        if seconds is not None:
            cpu[job_id] = cpu.get(job_id, 0.0) + seconds
        memory = parse_memory_mb(tres.get("mem")) if "mem" in tres else parse_memory_mb(max_rss)
        if memory is not None:
            rss[job_id] = max(rss.get(job_id, 0.0), float(memory))
    return {job_id: StepUsage(cpu.get(job_id), rss.get(job_id)) for job_id in sorted(seen)}


def live_efficiency(job: Job, usage: StepUsage | None, now: float) -> dict[str, Any] | None:
    """A running job's efficiency so far (``sacct.efficiency``'s shape); None without usage.
    A CPU figure the allocation could not have reached is dropped, not shown."""
    if usage is None or job.start_time is None:
        return None
    elapsed = max(0, int(now) - job.start_time)
    cpu_seconds = usage.cpu_seconds
    if cpu_seconds is not None and job.cpus and cpu_seconds > max(elapsed, 1) * job.cpus * _IMPOSSIBLE:
        cpu_seconds = None
    return efficiency({"elapsed_seconds": elapsed, "cpus": job.cpus,
                       "total_cpu_seconds": round(cpu_seconds, 1) if cpu_seconds is not None else None,
                       "max_rss_mb": usage.max_rss_mb, "memory_mb": job.memory_mb, "gpus": job.gpus})


def build_job_progress(job: Job, start_estimate: int | None, live: dict[str, Any] | None) -> Publication:
    """``job_progress``: what the scheduler expects (pending) or what the job uses (running),
    sent when it changes, on the job's usual channels (``jobs`` and ``user:<owner>``)."""
    data = {"job_id": job.job_id, "display_id": job.display_id, "user": job.user, "state": job.state,
            "start_estimate": iso(start_estimate), "efficiency": live}
    return Publication(JOBS, "job_progress", data, user=job.user)


def low_usage(accounting: Mapping[str, Any] | None, fraction: float) -> dict[str, Any] | None:
    """The figures of the gentle note when a COMPLETED job that ran at least
    ``LOW_USAGE_MIN_SECONDS`` used under ``fraction`` of its CPU time or of its requested
    memory; None otherwise (``fraction`` 0: never). A figure accounting lacks is not judged."""
    if fraction <= 0 or not accounting or accounting.get("state") != "COMPLETED":
        return None
    if (accounting.get("elapsed_seconds") or 0) < LOW_USAGE_MIN_SECONDS:
        return None
    figures = efficiency(accounting) or {}
    cpu = figures.get("cpu", {}).get("percent")
    memory = figures.get("memory", {}).get("percent")
    low_cpu = cpu is not None and cpu < fraction * 100
    low_memory = memory is not None and memory < fraction * 100
    if not (low_cpu or low_memory):
        return None
    return {"cpu_percent": cpu if low_cpu else None, "memory_percent": memory if low_memory else None,
            "cpus": accounting.get("cpus"), "memory_mb": accounting.get("memory_mb"),
            "max_rss_mb": accounting.get("max_rss_mb"), "fraction": fraction}


def build_low_usage_notification(job: Job, figures: Mapping[str, Any]) -> Notification:
    """``job_low_usage``, to the owner only: what the job used against what it asked for."""
    label = f"Job {job.job_id}" + (f" ({job.name})" if job.name else "")
    parts = []
    if figures.get("cpu_percent") is not None:
        parts.append(f"{figures['cpu_percent']:g} % of the CPU time its {figures.get('cpus')} CPUs offered")
    if figures.get("memory_percent") is not None:
        parts.append(f"{figures['memory_percent']:g} % of the {figures.get('memory_mb')} MB of memory it asked for")
    message = (f"{label} used {' and '.join(parts)}. Asking for less next time may let it start "
               "sooner and leaves room for others.")
    data = {"job_id": job.job_id, "name": job.name, "partition": job.partition, **figures}
    return Notification("job_low_usage", f"{label} used little of what it asked for", message,
                        "info", data, job.user)
