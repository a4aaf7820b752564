"""A site-scale simulated cluster (``run_slurm_monitor --mock --mock-size 10000x100000``).

Same contract as ``mock.MockCluster``: ``run(argv, timeout)`` answers ``scontrol --version``,
``squeue --all --json`` (all jobs or ``--jobs=<ids>``), the state tier (``squeue
--only-job-state``) and ``scontrol show nodes --json`` in Slurm 25.11's shape, so the
monitor's collector, parser, diff and publishing run exactly as against a real cluster.

What it holds: N nodes in four partitions (cpu, gpu with 4 GPUs each, bigmem, debug) and about
J job records: running jobs placed on nodes with room, pending jobs with a reason, job arrays
(a pending array is one record standing for its waiting tasks, "A_[5-40]", and each task that
starts becomes its own record, the last one taking the array's own job id, as slurmctld does),
jobs that just ended (FAILED with an exit code, CANCELLED by a signal, TIMEOUT, COMPLETED),
first with the COMPLETING flag. Steady churn: each listing ``squeue`` answer (the state tier,
or a full JSON not right after one; a detail fetch by id never) follows one step in
which ``churn`` (1 %) of the records change: pending jobs start, running jobs end, the
COMPLETING flag clears, ended jobs are purged and replaced by new submissions, so the
number of records stays near J.

Why records are rendered once and kept as JSON fragments (str): at 100,000 jobs building the whole
document each poll would cost the simulator more than the monitor it is meant to measure;
only the records a step touched are rendered again.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from slurm_monitor.collector import CommandResult
from slurm_monitor.mock import RELEASE, answer_command, state_row

PARTITIONS = (("cpu", 0.70, 64, 256 * 1024, 0), ("gpu", 0.15, 32, 512 * 1024, 4),
              ("bigmem", 0.10, 64, 2048 * 1024, 0), ("debug", 0.05, 16, 64 * 1024, 0))
USERS = tuple(f"user{i:03d}" for i in range(200))
ENDINGS = (("COMPLETED", 0.80), ("FAILED", 0.10), ("CANCELLED", 0.05), ("TIMEOUT", 0.05))


def _pick(rng: random.Random, shares: Sequence[tuple[Any, ...]]) -> str:
    """The name of one of ``shares`` ((name, share, ...) rows), drawn by share."""
    roll = rng.random()
    for row in shares:
        roll -= row[1]
        if roll < 0:
            return row[0]
    return shares[0][0]


def _num(value: int | None, infinite: bool = False) -> dict[str, Any]:
    if infinite:
        return {"set": False, "infinite": True, "number": 0}
    if value is None:
        return {"set": False, "infinite": False, "number": 0}
    return {"set": True, "infinite": False, "number": int(value)}


def _tasks(tasks: list[int]) -> str:
    """An array's waiting tasks as Slurm lists them: "5-40", "7" or ""."""
    return f"{tasks[0]}-{tasks[-1]}" if len(tasks) > 1 else str(tasks[0]) if tasks else ""


@dataclass(slots=True)
class SimNode:
    name: str
    partition: str
    cpus: int
    memory_mb: int
    gpus: int
    alloc_cpus: int = 0
    alloc_gpus: int = 0


@dataclass(slots=True)
class SimJob:
    job_id: int
    user: str
    partition: str
    cpus: int
    gpus: int
    submit: int
    limit: int
    state: str = "PENDING"
    completing: bool = False
    reason: str = "Priority"
    node: int | None = None  # index into ScaleCluster.nodes
    start: int = 0
    end: int = 0
    raw_exit: int = 0  # a wait(2) status, as slurmctld keeps it
    array_job_id: int = 0
    array_task_id: int | None = None
    pending_tasks: list[int] = field(default_factory=list)  # the array's record: tasks waiting


class ScaleCluster:
    def __init__(self, nodes: int, jobs: int, seed: int | None = None, churn: float = 0.01,
                 clock: Callable[[], float] = time.time) -> None:
        self.rng = random.Random(seed)
        self.clock = clock
        self.churn = churn
        self.target_jobs = jobs
        self.next_job_id = 1000
        self.steps = 0
        self.nodes: list[SimNode] = []
        self.by_partition: dict[str, list[int]] = {}
        for name, share, cpus, memory, gpus in PARTITIONS:
            count = max(1, round(nodes * share)) if name != "cpu" else 0
            self._add_nodes(name, count, cpus, memory, gpus)
        self._add_nodes("cpu", max(1, nodes - len(self.nodes)), 64, 256 * 1024, 0)
        self.jobs: dict[int, SimJob] = {}
        self._job_json: dict[int, str] = {}  # str, not bytes: the document is a str, joined once
        self._node_json: list[str] = [""] * len(self.nodes)
        self._dirty_nodes: set[int] = set(range(len(self.nodes)))
        self._stepped_for_listing = False
        # Opt-in (``mock_trace``, benchmarks): called after each step with what it changed.
        self.on_step: Callable[[list[tuple[int, str]]], None] | None = None
        self._changes: list[tuple[int, str]] | None = None
        while len(self.jobs) < jobs:
            self._submit(initial=True)

    # --- commands -------------------------------------------------------------------------

    async def run(self, argv: Sequence[str], timeout: float) -> CommandResult:
        started = time.monotonic()
        return answer_command(argv, started, self)

    def squeue_states(self) -> str:
        """The state tier's answer, after one step of churn."""
        self.step()
        self._stepped_for_listing = True
        return "".join([state_row(j.job_id, j.state, j.completing, j.array_task_id, _tasks(j.pending_tasks))
                        + "\n" for j in self.jobs.values()])

    def squeue_json(self, ids: set[int] | None = None) -> str:
        """All jobs (after one step of churn, unless the state tier just stepped: a full cycle
        is one state tier then one full JSON), or those of ``ids`` as they are."""
        if ids is not None:
            return self._document("jobs", [self._job_json[i] for i in ids if i in self._job_json])
        if not self._stepped_for_listing:
            self.step()  # ~1 % of the jobs change per poll
        self._stepped_for_listing = False
        return self._document("jobs", self._job_json.values())

    def _document(self, key: str, records: Iterable[str]) -> str:
        """``{"<key>":[records...],"meta":...}`` built in ONE join: the document (86 MB at
        100,000 jobs) exists once, not as a body, then a copy, then a decoded copy."""
        parts = ['{"' + key + '":[']
        for record in records:
            parts += (record, ",")
        if len(parts) > 1:
            parts.pop()  # the last comma
        parts.append('],"meta":' + self._meta() + ',"errors":[],"warnings":[]}')
        return "".join(parts)

    # --- simulation -----------------------------------------------------------------------

    def _add_nodes(self, partition: str, count: int, cpus: int, memory: int, gpus: int) -> None:
        indexes = self.by_partition.setdefault(partition, [])
        for _ in range(count):
            indexes.append(len(self.nodes))
            self.nodes.append(SimNode(f"{partition[:3]}{len(self.nodes):05d}", partition, cpus, memory, gpus))

    def _now(self) -> int:
        return int(self.clock())

    def _new_id(self) -> int:
        self.next_job_id += 1
        return self.next_job_id

    def _submit(self, initial: bool = False) -> None:
        rng = self.rng
        partition = _pick(rng, PARTITIONS)
        job = SimJob(self._new_id(), rng.choice(USERS), partition, rng.choice((1, 2, 4, 8, 16)),
                     rng.choice((1, 2)) if partition == "gpu" else 0,
                     self._now() - (rng.randrange(3600) if initial else 0), rng.choice((30, 60, 240, 1440)))
        if rng.random() < 0.1:  # an array: one record for its waiting tasks
            job.array_job_id = job.job_id
            job.pending_tasks = list(range(rng.choice((10, 50, 100))))
        self._touch(job)
        if initial and rng.random() < 0.7:  # start at every stage of a job's life
            self._start(job)
            if job.state == "RUNNING" and rng.random() < 0.4:
                self._end(job)
                if rng.random() < 0.66:
                    job.completing = False
                    self._touch(job)

    def _place(self, job: SimJob) -> int | None:
        candidates = self.by_partition[job.partition]
        for _ in range(3):
            index = self.rng.choice(candidates)
            node = self.nodes[index]
            if node.cpus - node.alloc_cpus >= job.cpus and node.gpus - node.alloc_gpus >= job.gpus:
                return index
        return None

    def _start(self, job: SimJob) -> None:
        """Start ``job`` (or, for an array's record, its next task) if a node has room."""
        index = self._place(job)
        if index is None:
            job.reason = "Resources"
            self._touch(job)
            return
        if job.pending_tasks and len(job.pending_tasks) > 1:
            task = SimJob(self._new_id(), job.user, job.partition, job.cpus, job.gpus, job.submit,
                          job.limit, array_job_id=job.array_job_id,
                          array_task_id=job.pending_tasks.pop(0))
            self._touch(job)
            job = task
        elif job.pending_tasks:
            job.array_task_id = job.pending_tasks.pop()
        node = self.nodes[index]
        node.alloc_cpus += job.cpus
        node.alloc_gpus += job.gpus
        self._dirty_nodes.add(index)
        job.state, job.reason, job.node, job.start = "RUNNING", "None", index, self._now()
        self._touch(job)

    def _end(self, job: SimJob) -> None:
        state = _pick(self.rng, ENDINGS)
        job.state, job.completing, job.end = state, True, self._now()
        job.raw_exit = {"FAILED": self.rng.choice((1, 2, 3)) << 8, "CANCELLED": 15, "TIMEOUT": 15}.get(state, 0)
        job.reason = {"FAILED": "NonZeroExitCode", "TIMEOUT": "TimeLimit"}.get(state, "None")
        if job.node is not None:
            node = self.nodes[job.node]
            node.alloc_cpus -= job.cpus
            node.alloc_gpus -= job.gpus
            self._dirty_nodes.add(job.node)
        self._touch(job)

    def step(self) -> int:
        """One poll's worth of churn; returns how many records changed. ``on_step``, when set,
        gets each (job id, state after the change, or "REMOVED") of this step."""
        self.steps += 1
        self._changes = [] if self.on_step is not None else None
        count = max(1, int(len(self.jobs) * self.churn))
        changed = 0
        for job_id in self.rng.sample(list(self.jobs), min(count, len(self.jobs))):
            job = self.jobs.get(job_id)
            if job is None:
                continue
            if job.state == "PENDING":
                self._start(job)
            elif job.state == "RUNNING":
                self._end(job)
            elif job.completing:
                job.completing = False
                self._touch(job)
            else:
                del self.jobs[job_id]
                del self._job_json[job_id]
                if self._changes is not None:
                    self._changes.append((job_id, "REMOVED"))
            changed += 1
        while len(self.jobs) < self.target_jobs:
            self._submit()
        if self.on_step is not None and self._changes is not None:
            self.on_step(self._changes)
        self._changes = None
        return changed

    # --- Slurm 25.11 JSON, one fragment per record ------------------------------------------

    def _touch(self, job: SimJob) -> None:
        if self._changes is not None:
            self._changes.append((job.job_id, job.state))
        self.jobs[job.job_id] = job
        self._job_json[job.job_id] = json.dumps(self._job_record(job), separators=(",", ":"))

    def _job_record(self, job: SimJob) -> dict[str, Any]:
        ended = job.state not in ("PENDING", "RUNNING")
        tres = f"cpu={job.cpus},mem={job.cpus * 2048}M,node=1" + (f",gres/gpu={job.gpus}" if job.gpus else "")
        signal = job.raw_exit & 0x7F
        code = (job.raw_exit >> 8) & 0xFF
        status = ("SIGNALED" if signal else "ERROR" if code else "SUCCESS") if ended else "PENDING"
        tasks = job.pending_tasks
        return {
            "job_id": job.job_id, "name": "sweep" if job.array_job_id else "job",
            "user_name": job.user, "user_id": 10000 + USERS.index(job.user), "partition": job.partition,
            "job_state": [job.state, "COMPLETING"] if job.completing else [job.state],
            "state_reason": job.reason, "nodes": self.nodes[job.node].name if job.node is not None else "",
            "node_count": _num(1), "cpus": _num(job.cpus), "tres_req_str": tres,
            "tres_alloc_str": tres if job.node is not None else "",
            "submit_time": _num(job.submit), "start_time": _num(job.start), "end_time": _num(job.end),
            "time_limit": _num(job.limit),
            "exit_code": {"status": [status], "return_code": _num(code if ended and not signal else None),
                          "signal": {"id": _num(signal or None), "name": "TERM" if signal else ""}},
            "array_job_id": _num(job.array_job_id),
            "array_task_id": _num(job.array_task_id),
            "array_task_string": _tasks(tasks),
        }

    def _meta(self) -> str:
        return json.dumps({"plugin": {"type": "", "name": "", "data_parser": "data_parser/v0.0.44"},
                           "slurm": {"version": {"major": "25", "minor": "11", "micro": "0"},
                                     "release": RELEASE, "cluster": "scale"}})

    def _node_record(self, node: SimNode) -> dict[str, Any]:
        free = node.cpus - node.alloc_cpus
        state = "IDLE" if node.alloc_cpus == 0 else "ALLOCATED" if free == 0 else "MIXED"
        gres = f"gpu:a100:{node.gpus}" if node.gpus else ""
        return {"name": node.name, "hostname": node.name, "state": [state], "partitions": [node.partition],
                "cpus": node.cpus, "alloc_cpus": node.alloc_cpus, "alloc_idle_cpus": free,
                "cpu_load": node.alloc_cpus * 95, "real_memory": node.memory_mb,
                "alloc_memory": node.alloc_cpus * 2048, "free_mem": _num(node.memory_mb - node.alloc_cpus * 2048),
                "gres": gres, "gres_used": f"gpu:a100:{node.alloc_gpus}(IDX:N/A)" if gres else "",
                "reason": "", "version": RELEASE}

    def nodes_json(self) -> str:
        for index in self._dirty_nodes:
            self._node_json[index] = json.dumps(self._node_record(self.nodes[index]), separators=(",", ":"))
        self._dirty_nodes.clear()
        return self._document("nodes", self._node_json)
