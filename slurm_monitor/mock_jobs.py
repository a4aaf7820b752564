"""The simulated cluster's answers to the commands that name jobs (``-j id,id``): the
scheduler's start estimate (``squeue --start``), live step usage (``sstat``) and accounting
(``sacct --json``), for the jobs someone watches and the jobs that ended. A mixin of
``mock.MockCluster``: it reads the cluster's ``jobs``, ``ended``, ``now`` and ``_meta()``.

Usage is a steady share of a job's CPUs (30-100 %) and memory (20-100 %), fixed by its id, the
same in ``sstat`` and ``sacct``: about one job in sixteen uses under a quarter of its memory
(a ``job_low_usage`` note in the demo now and then).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slurm_monitor.mock import MockJob


def _num(value: float | None) -> dict[str, Any]:
    """Slurm 23.02+'s number object."""
    if value is None:
        return {"set": False, "infinite": False, "number": 0}
    return {"set": True, "infinite": False, "number": int(value)}


class JobQueries:
    jobs: dict[int, MockJob]
    ended: dict[int, MockJob]
    now: float

    def _meta(self) -> dict[str, Any]:
        raise NotImplementedError

    def start_text(self, ids: list[str]) -> str:
        """``squeue --start --format %i|%S``: for each pending job asked about, the earliest time
        a running job of its partition reaches its limit (local time), "N/A" when none runs."""
        lines = []
        for job in self._asked(ids, "PENDING"):
            ends = [j.start_time + j.time_limit_minutes * 60 for j in self.jobs.values()
                    if j.state == "RUNNING" and j.partition == job.partition and j.start_time is not None]
            when = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(min(ends))) if ends else "N/A"
            lines.append(f"{job.job_id}|{when}")
        return "".join(line + "\n" for line in lines)

    def sstat_text(self, ids: list[str]) -> str:
        """``sstat -P -n -o JobID,NTasks,AveCPU,MaxRSS,TRESUsageInTot`` for the running jobs asked
        about (``_usage``)."""
        lines = []
        for job in self._asked(ids, "RUNNING"):
            elapsed = max(0.0, self.now - (job.start_time or self.now))
            used, rss = self._usage(job, elapsed)
            clock = f"{used // 3600:02d}:{used // 60 % 60:02d}:{used % 60:02d}"
            lines.append(f"{job.job_id}.batch|1|{clock}|{rss}M|cpu={clock},mem={rss}M,pages=0")
        return "".join(line + "\n" for line in lines)

    @staticmethod
    def _usage(job: MockJob, elapsed: float) -> tuple[int, int]:
        """(CPU seconds, resident MB) after ``elapsed`` seconds (see the module doc)."""
        cpu_share = 0.3 + 0.7 * (job.job_id * 37 % 100) / 100
        memory_share = 0.2 + 0.8 * (job.job_id * 53 % 100) / 100
        return int(elapsed * job.cpus * cpu_share), int(job.memory_mb * memory_share)

    def sacct_json(self, ids: list[str]) -> str:
        """``sacct --json -j ids`` (25.11's shape, the fields ``sacct.parse_sacct`` reads) for the
        jobs asked about that ended, while accounting remembers them."""
        wanted = {int(i) for i in ids if i.isdigit()}
        records = []
        for job in (self.ended[i] for i in sorted(wanted & set(self.ended))):
            if job.state != job.final_state:
                continue  # still COMPLETING: accounting has not closed it yet
            elapsed = int((job.end_time or self.now) - job.start_time) if job.start_time else 0
            used, rss = self._usage(job, elapsed)
            tres = [{"type": "cpu", "name": "", "id": 1, "count": job.cpus},
                    {"type": "mem", "name": "", "id": 2, "count": job.memory_mb}]
            records.append({
                "job_id": job.job_id, "name": job.name, "user": job.user, "account": "mock",
                "partition": job.partition, "nodes": job.node or "None", "qos": "normal",
                "state": {"current": [job.state], "reason": "None"},
                "exit_code": {"status": ["SIGNALED" if job.signal else "ERROR" if job.exit_code else "SUCCESS"],
                              "return_code": _num(job.exit_code), "signal": {"id": _num(job.signal or None)}},
                "time": {"elapsed": elapsed, "submission": int(job.submit_time), "start": int(job.start_time or 0),
                         "end": int(job.end_time or 0), "limit": _num(job.time_limit_minutes),
                         "total": {"seconds": used, "microseconds": 0}},
                "tres": {"allocated": tres if job.start_time else [], "requested": tres},
                "required": {"CPUs": job.cpus, "memory_per_node": _num(job.memory_mb)},
                "steps": [{"tres": {"requested": {"max": [{"type": "mem", "name": "", "id": 2,
                                                            "count": rss * 1024 * 1024}]}}}]
                if job.start_time else [],
            })
        return json.dumps({"jobs": records, "meta": self._meta(), "errors": [], "warnings": []})

    def _asked(self, ids: list[str], state: str) -> list[MockJob]:
        wanted = {int(i) for i in ids if i.isdigit()}
        return [j for j in sorted(self.jobs.values(), key=lambda j: j.job_id)
                if j.job_id in wanted and j.state == state]
