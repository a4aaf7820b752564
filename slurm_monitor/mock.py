"""A simulated cluster for ``run_slurm_monitor --mock``: demos and tests with no Slurm.

``build_mock_cluster`` picks this small cluster, or ``mock_scale.ScaleCluster`` for a size
(``--mock-size 10000x100000``). ``MockCluster.run`` answers the same commands the collector
runs (``scontrol --version``,
``squeue --all --json``, the state tier, ``scontrol show nodes --json``; ``squeue --start`` and
``sstat`` for the jobs someone watches) in Slurm 25.11's shape, so
the simulated data goes through the same parsing, diff and publishing as a real cluster's.

The simulation advances in one-second ticks up to the clock's time: jobs are submitted,
wait (PENDING) until a node has room, run, spend a moment COMPLETING and end COMPLETED,
FAILED (a real exit code), CANCELLED or TIMEOUT, then are purged after ``MIN_JOB_AGE_SECONDS``.
Nodes have CPUs, memory and GPUs; now and then one is drained for maintenance or goes down
(its jobs end NODE_FAIL) and comes back. ``seed`` and ``clock`` make it deterministic.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from slurm_monitor.collector import CommandResult
from slurm_monitor.mock_jobs import JobQueries, _num

RELEASE = "25.11.0"
MIN_JOB_AGE_SECONDS = 60
COMPLETING_SECONDS = 2
MAX_TICKS_PER_ADVANCE = 900
MAX_PENDING_JOBS = 25  # users stop submitting to a full queue, so it stays bounded
MAX_ACCOUNTED = 2000
USERS = {"alice": 1001, "bob": 1002, "carol": 1003, "dave": 1004}
JOB_NAMES = ("train_resnet", "preprocess", "sim_md", "render", "align_reads", "eval", "sweep")


@dataclass
class MockNode:
    name: str
    partition: str
    cpus: int
    memory_mb: int
    gpus: int = 0
    drain_until: float | None = None
    down_until: float | None = None
    reason: str = ""
    load: float = 0.0  # load average


@dataclass
class MockJob:
    job_id: int
    name: str
    user: str
    partition: str
    cpus: int
    memory_mb: int
    gpus: int
    submit_time: float
    time_limit_minutes: int
    duration: float  # how long it would run if nothing stopped it
    outcome: str  # COMPLETED, FAILED, CANCELLED
    exit_code: int = 0
    state: str = "PENDING"
    node: str | None = None
    start_time: float | None = None
    end_time: float | None = None
    completing_until: float | None = None
    signal: int = 0
    reason: str = "Priority"
    final_state: str = ""


# A per-job answer to the commands that name jobs (``-j id,id``): ``squeue --start``, ``sstat``.
JobsAnswer = Callable[[list[str]], str]


def _job_ids(command: Sequence[str]) -> list[str]:
    return command[command.index("-j") + 1].split(",") if "-j" in command[:-1] else []


def answer_command(argv: Sequence[str], started: float, cluster: Any) -> CommandResult:
    """What a simulated cluster answers to the commands the collector runs (path prefix
    ignored): ``scontrol --version``; ``squeue --only-job-state ... -o %A|%T|%K`` (the state
    tier, ``cluster.squeue_states()``); ``squeue --json`` with or without ``--jobs=<ids>``
    (``cluster.squeue_json(ids)``, filtered as 24.05.1 on do); ``scontrol show nodes ...``;
    ``sdiag`` (a quiet scheduler); and, where the cluster gives them (``start_text``,
    ``sstat_text``, ``sacct_json``), ``squeue --start``, ``sstat`` and ``sacct`` with ``-j ids``;
    anything else exits 2. Shared by the small cluster and ``mock_scale``."""
    command = [argv[0].rsplit("/", 1)[-1], *argv[1:]]
    start: JobsAnswer | None = getattr(cluster, "start_text", None)
    sstat: JobsAnswer | None = getattr(cluster, "sstat_text", None)
    sacct: JobsAnswer | None = getattr(cluster, "sacct_json", None)
    if command[:2] == ["scontrol", "--version"]:
        out, rc = f"slurm {RELEASE}\n", 0
    elif command[0] == "squeue" and "--start" in command and start is not None:
        out, rc = start(_job_ids(command)), 0
    elif command[0] == "sstat" and sstat is not None:
        out, rc = sstat(_job_ids(command)), 0
    elif command[0] == "sacct" and sacct is not None:
        out, rc = sacct(_job_ids(command)), 0
    elif command[0] == "squeue" and "--only-job-state" in command:
        out, rc = cluster.squeue_states(), 0
    elif command[0] == "squeue" and "--json" in command:
        ids = next((a.split("=", 1)[1] for a in command if a.startswith("--jobs=")), None)
        out, rc = cluster.squeue_json(None if ids is None else {int(i) for i in ids.split(",") if i}), 0
    elif command[:3] == ["scontrol", "show", "nodes"]:
        out, rc = cluster.nodes_json(), 0
    elif command == ["sdiag"]:
        out, rc = SDIAG_QUIET, 0
    else:
        out, rc = "", 2
    return CommandResult(tuple(argv), rc, out, "" if rc == 0 else "unsupported command",
                         time.monotonic() - started)


SDIAG_QUIET = ("Server thread count:  3\nAgent queue size:     0\nAgent count:          0\n\n"
               "Main schedule statistics (microseconds):\n\tLast cycle:   120\n")


def state_row(job_id: int, state: str, completing: bool, task: int | None, tasks: str) -> str:
    """One ``squeue --only-job-state -o %A|%T|%K`` line: %T is ``job_state_string()``, which
    prints the COMPLETING flag instead of the base state; %K the task id or pending tasks."""
    return f"{job_id}|{'COMPLETING' if completing else state}|{task if task is not None else tasks or 'N/A'}"


def build_mock_cluster(seed: int | None = None, size: tuple[int, int] | None = None) -> Any:
    """The simulated cluster for ``--mock``: the eight-node one, or (nodes, jobs) at site scale."""
    if size is None:
        return MockCluster(seed=seed)
    from slurm_monitor.mock_scale import ScaleCluster

    return ScaleCluster(size[0], size[1], seed=seed)


def default_nodes() -> list[MockNode]:
    cpu = [MockNode(f"cn{i:02d}", "cpu", 32, 128 * 1024) for i in range(1, 7)]
    gpu = [MockNode(f"gpu{i:02d}", "gpu", 64, 512 * 1024, gpus=4) for i in range(1, 3)]
    return cpu + gpu


class MockCluster(JobQueries):
    def __init__(self, seed: int | None = None, clock: Callable[[], float] = time.time,
                 nodes: list[MockNode] | None = None, submit_per_minute: float = 12.0,
                 warm_up_seconds: int = 180) -> None:
        self.rng = random.Random(seed)
        self.clock = clock
        self.nodes = {n.name: n for n in (nodes or default_nodes())}
        self.jobs: dict[int, MockJob] = {}
        self.next_job_id = 1000
        self.ended: dict[int, MockJob] = {}  # what accounting remembers (the newest MAX_ACCOUNTED)
        self.submit_per_second = submit_per_minute / 60.0
        now = clock()
        self.now = now - warm_up_seconds
        self.advance(now)

    # --- commands --------------------------------------------------------------------------

    async def run(self, argv: Sequence[str], timeout: float) -> CommandResult:
        """Answer one Slurm command as the real binaries would (path prefix ignored)."""
        started = time.monotonic()
        self.advance(self.clock())
        return answer_command(argv, started, self)

    # --- simulation ------------------------------------------------------------------------

    def advance(self, until: float) -> None:
        ticks = 0
        while self.now + 1 <= until and ticks < MAX_TICKS_PER_ADVANCE:
            self.now += 1
            ticks += 1
            self._tick()
        if ticks == MAX_TICKS_PER_ADVANCE:
            self.now = until  # a long pause (e.g. a suspended laptop): skip, don't replay

    def _tick(self) -> None:
        pending = sum(1 for j in self.jobs.values() if j.state == "PENDING")
        if self.rng.random() < self.submit_per_second and pending < MAX_PENDING_JOBS:
            self.submit()
        self._node_events()
        self._finish_jobs()
        self._schedule()
        self._update_loads()
        self._purge()

    def submit(self, user: str | None = None, cpus: int | None = None, gpus: int | None = None,
               duration: float | None = None, outcome: str | None = None) -> MockJob:
        rng = self.rng
        gpus = gpus if gpus is not None else (rng.choice([1, 2, 4]) if rng.random() < 0.12 else 0)
        limit = rng.choice([2, 5, 10])
        roll = rng.random()
        job = MockJob(
            job_id=self.next_job_id, name=rng.choice(JOB_NAMES),
            user=user or rng.choice(sorted(USERS)), partition="gpu" if gpus else "cpu",
            cpus=cpus or rng.choice([1, 2, 4, 8, 16, 32]), memory_mb=rng.choice([2, 4, 8, 16, 32]) * 1024,
            gpus=gpus, submit_time=self.now, time_limit_minutes=limit,
            duration=duration if duration is not None else (
                limit * 60 + 30 if roll > 0.93 else rng.uniform(20, min(limit * 60, 240))),
            outcome=outcome or ("FAILED" if roll < 0.1 else "CANCELLED" if roll < 0.17 else "COMPLETED"),
        )
        job.exit_code = rng.choice([1, 2, 3, 127]) if job.outcome == "FAILED" else 0
        self.next_job_id += 1
        self.jobs[job.job_id] = job
        return job

    def _usable(self, node: MockNode) -> bool:
        return node.down_until is None and node.drain_until is None

    def _free_all(self) -> dict[str, list[int]]:
        """node -> [free CPUs, free memory MB, free GPUs]."""
        free = {n.name: [n.cpus, n.memory_mb, n.gpus] for n in self.nodes.values()}
        for job in self.jobs.values():
            if job.node in free and job.state in ("RUNNING", "COMPLETING"):
                room = free[job.node]
                room[0], room[1], room[2] = room[0] - job.cpus, room[1] - job.memory_mb, room[2] - job.gpus
        return free

    def _free(self, node: MockNode) -> tuple[int, int, int]:
        cpus, memory, gpus = self._free_all()[node.name]
        return cpus, memory, gpus

    def _schedule(self) -> None:
        free = self._free_all()
        for job in sorted((j for j in self.jobs.values() if j.state == "PENDING"), key=lambda j: j.job_id):
            candidates = [n for n in self.nodes.values()
                          if n.partition == job.partition and self._usable(n)]
            for node in candidates:
                room = free[node.name]
                if room[0] >= job.cpus and room[1] >= job.memory_mb and room[2] >= job.gpus:
                    job.state, job.node, job.start_time, job.reason = "RUNNING", node.name, self.now, "None"
                    room[0], room[1], room[2] = room[0] - job.cpus, room[1] - job.memory_mb, room[2] - job.gpus
                    break
            else:
                job.reason = "Resources" if candidates else "PartitionNodeLimit"

    def _end(self, job: MockJob, state: str, signal: int = 0, exit_code: int | None = None) -> None:
        job.final_state, job.signal = state, signal
        self.ended[job.job_id] = job
        while len(self.ended) > MAX_ACCOUNTED:
            del self.ended[next(iter(self.ended))]
        if exit_code is not None:
            job.exit_code = exit_code
        job.end_time = self.now
        if job.state == "PENDING":
            job.state = state
        else:
            job.state, job.completing_until = "COMPLETING", self.now + COMPLETING_SECONDS

    def _finish_jobs(self) -> None:
        for job in list(self.jobs.values()):
            if job.state == "COMPLETING" and job.completing_until is not None and self.now >= job.completing_until:
                job.state = job.final_state
            elif job.state == "PENDING" and job.outcome == "CANCELLED" and self.now - job.submit_time > 90:
                self._end(job, "CANCELLED", exit_code=0)
            elif job.state == "RUNNING":
                ran = self.now - (job.start_time or self.now)
                if ran >= job.time_limit_minutes * 60:
                    self._end(job, "TIMEOUT", signal=15, exit_code=0)
                elif ran >= job.duration:
                    if job.outcome == "CANCELLED":
                        self._end(job, "CANCELLED", signal=15, exit_code=0)
                    else:
                        self._end(job, job.outcome)

    def _node_events(self) -> None:
        rng = self.rng
        for node in self.nodes.values():
            if node.down_until is not None and self.now >= node.down_until:
                node.down_until, node.reason = None, ""
            if node.drain_until is not None and self.now >= node.drain_until:
                node.drain_until, node.reason = None, ""
            if not self._usable(node):
                continue
            roll = rng.random()
            if roll < 1 / 3600:
                node.down_until, node.reason = self.now + rng.uniform(30, 90), "Not responding"
                for job in self.jobs.values():
                    if job.node == node.name and job.state == "RUNNING":
                        self._end(job, "NODE_FAIL", exit_code=0)
            elif roll < 1 / 1200:
                node.drain_until, node.reason = self.now + rng.uniform(60, 180), "scheduled maintenance"

    def _update_loads(self) -> None:
        free = self._free_all()
        for node in self.nodes.values():
            busy = node.cpus - free[node.name][0] if node.down_until is None else 0
            target = busy * self.rng.uniform(0.8, 1.0)
            node.load = round(node.load + (target - node.load) * 0.5, 2)

    def _purge(self) -> None:
        for job_id in [j.job_id for j in self.jobs.values()
                       if j.end_time is not None and j.state == j.final_state
                       and self.now - j.end_time > MIN_JOB_AGE_SECONDS]:
            del self.jobs[job_id]

    # --- Slurm 25.11 JSON -----------------------------------------------------------------

    def _meta(self) -> dict[str, Any]:
        return {"plugin": {"type": "", "name": "", "data_parser": "data_parser/v0.0.44"},
                "slurm": {"version": {"major": "25", "minor": "11", "micro": "0"},
                          "release": RELEASE, "cluster": "mock"}}

    def _job_record(self, job: MockJob) -> dict[str, Any]:
        state = [job.final_state, "COMPLETING"] if job.state == "COMPLETING" else [job.state]
        finished = job.end_time is not None
        tres = f"cpu={job.cpus},mem={job.memory_mb}M,node=1" + (f",gres/gpu={job.gpus}" if job.gpus else "")
        status = ("SIGNALED" if job.signal else "ERROR" if job.exit_code else "SUCCESS") if finished else "PENDING"
        return {
            "job_id": job.job_id, "name": job.name, "user_name": job.user, "user_id": USERS[job.user],
            "partition": job.partition, "job_state": state, "state_reason": job.reason,
            "nodes": job.node or "", "node_count": _num(1), "cpus": _num(job.cpus),
            "tres_req_str": tres, "tres_alloc_str": tres if job.node else "",
            "submit_time": _num(job.submit_time), "start_time": _num(job.start_time or 0),
            "end_time": _num(job.end_time or 0), "time_limit": _num(job.time_limit_minutes),
            "array_job_id": _num(0), "array_task_id": _num(None), "array_task_string": "",
            "exit_code": {"status": [status], "return_code": _num(job.exit_code if finished else None),
                          "signal": {"id": _num(job.signal or None), "name": "TERM" if job.signal else ""}},
        }

    def squeue_json(self, ids: set[int] | None = None) -> str:
        jobs = [self._job_record(j) for j in sorted(self.jobs.values(), key=lambda j: j.job_id)
                if ids is None or j.job_id in ids]
        return json.dumps({"jobs": jobs, "meta": self._meta(), "errors": [], "warnings": []})

    def squeue_states(self) -> str:
        return "".join(state_row(j.job_id, j.final_state if j.state == "COMPLETING" else j.state,
                                 j.state == "COMPLETING", None, "") + "\n"
                       for j in sorted(self.jobs.values(), key=lambda j: j.job_id))

    def _node_record(self, node: MockNode) -> dict[str, Any]:
        cpus_free, memory_free, gpus_free = self._free(node)
        alloc = node.cpus - cpus_free
        if node.down_until is not None:
            state = ["DOWN", "NOT_RESPONDING"]
        else:
            state = ["IDLE" if alloc == 0 else "ALLOCATED" if cpus_free == 0 else "MIXED"]
            if node.drain_until is not None:
                state.append("DRAIN")
        gres = f"gpu:a100:{node.gpus}" if node.gpus else ""
        used = node.gpus - gpus_free
        return {
            "name": node.name, "hostname": node.name, "state": state, "partitions": [node.partition],
            "cpus": node.cpus, "alloc_cpus": alloc, "alloc_idle_cpus": cpus_free,
            "cpu_load": int(node.load * 100), "real_memory": node.memory_mb,
            "alloc_memory": node.memory_mb - memory_free,
            "free_mem": _num(max(0, memory_free - 2048)), "gres": gres,
            "gres_used": f"gpu:a100:{used}(IDX:{'0-' + str(used - 1) if used else 'N/A'})" if gres else "",
            "reason": node.reason, "version": RELEASE,
        }

    def nodes_json(self) -> str:
        nodes = [self._node_record(n) for n in sorted(self.nodes.values(), key=lambda n: n.name)]
        return json.dumps({"nodes": nodes, "meta": self._meta(), "errors": [], "warnings": []})
