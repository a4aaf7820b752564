"""PURE: job arrays: the ids ``sbatch`` prints ("10_1") and each array's progress.

Slurm lists an array as one record per task that has started (its own job id, with
``array_job_id``/``array_task_id``) plus, while some tasks still wait, one record (whose job
id is the array's) standing for all of them, its ``array_task_string`` listing their ids
("3-4", "5-99%4" with a throttle). Seen on 22.05: ``10_[3-4]`` PENDING, ``10_1`` RUNNING as
job 11; when task 4 starts the array's own record becomes task 4.

``array_progress`` counts, per array, tasks pending / running / done (``done`` = ended in any
way, ``failed`` = the ones of those that did not complete). Tasks Slurm has purged
(``MinJobAge``) are no longer counted: the counts describe what squeue lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping

from slurm_monitor.snapshot import TERMINAL_JOB_STATES, Job

_RANGE = re.compile(r"^(\d+)(?:-(\d+)(?::(\d+))?)?$")
_REF = re.compile(r"^(\d+)(?:_(\d+))?$")


def count_tasks(task_string: str | None) -> int:
    """"3-4" -> 2, "1,5-9:2" -> 4 (1, 5, 7, 9), "0-99%4" -> 100; unreadable parts count 1."""
    if not task_string:
        return 0
    total = 0
    for part in task_string.split("%", 1)[0].split(","):
        match = _RANGE.match(part.strip())
        if not match:
            total += 1 if part.strip() else 0
            continue
        first, last, step = match.group(1), match.group(2), match.group(3)
        if last is None:
            total += 1
        else:
            span = int(last) - int(first)
            total += span // max(1, int(step or 1)) + 1 if span >= 0 else 0
    return total


@dataclass(frozen=True)
class ArrayProgress:
    array_job_id: str
    pending: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.pending + self.running + self.done

    def as_dict(self) -> dict[str, int | str]:
        return {"array_job_id": self.array_job_id, "pending": self.pending, "running": self.running,
                "done": self.done, "failed": self.failed, "total": self.total}


def array_progress(jobs: Iterable[Job] | Mapping[str, Job],
                   only: Iterable[str] | None = None) -> dict[str, ArrayProgress]:
    """{array_job_id: progress} for every array in ``jobs`` (or only the ids in ``only``)."""
    wanted = set(only) if only is not None else None
    records = jobs.values() if isinstance(jobs, Mapping) else jobs
    counts: dict[str, list[int]] = {}
    for job in records:
        array = job.array_job_id
        if array is None or (wanted is not None and array not in wanted):
            continue
        row = counts.setdefault(array, [0, 0, 0, 0])
        if job.array_task_id is None and job.array_tasks:
            tasks = count_tasks(job.array_tasks)
        else:
            tasks = 1
        if job.state in TERMINAL_JOB_STATES:
            row[2] += tasks
            row[3] += tasks if job.state != "COMPLETED" else 0
        elif job.state == "PENDING":
            row[0] += tasks
        else:  # RUNNING, SUSPENDED, a flag standing in for the base state (COMPLETING)
            row[1] += tasks
    return {array: ArrayProgress(array, *row) for array, row in sorted(counts.items())}


def arrays_touched(jobs: Iterable[Job]) -> set[str]:
    """The arrays some of ``jobs`` (e.g. those an event is about) belong to."""
    return {job.array_job_id for job in jobs if job.array_job_id is not None}


@dataclass(frozen=True)
class JobRef:
    """A job as a person types it: "12" (a job id, or a whole array) or "10_1" (one task)."""

    job_id: str
    task: int | None = None


def parse_job_ref(text: str) -> JobRef | None:
    match = _REF.match(text.strip())
    if not match:
        return None
    return JobRef(match.group(1), int(match.group(2)) if match.group(2) is not None else None)


def _in_tasks(task: int, task_string: str) -> bool:
    for part in task_string.split("%", 1)[0].split(","):
        match = _RANGE.match(part.strip())
        if not match:
            continue
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        step = max(1, int(match.group(3) or 1))
        if first <= task <= last and (task - first) % step == 0:
            return True
    return False


def job_matches(job: Job, ref: JobRef) -> bool:
    """"10_1" matches task 1 of array 10, also while it still waits inside the array's pending
    record ("10_[1-4]"); "10" matches job 10 and, when 10 is an array, all its tasks."""
    if ref.task is None:
        return job.job_id == ref.job_id or job.array_job_id == ref.job_id
    if job.array_job_id != ref.job_id:
        return False
    if job.array_task_id is not None:
        return job.array_task_id == ref.task
    return bool(job.array_tasks) and _in_tasks(ref.task, job.array_tasks or "")
