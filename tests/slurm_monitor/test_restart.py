"""Nothing lost across restarts (issue 13): a long-running monitor starts from the saved state,
reports every transition it missed once, and asks sacct how the jobs that vanished meanwhile
ended, so each gets exactly one terminal event and one notification."""

from __future__ import annotations

import asyncio
import json

import pytest

from slurm_monitor.collector import CommandResult, SlurmCollector
from slurm_monitor.monitor import History, Intervals, Monitor
from tests.slurm_monitor import shapes
from tests.slurm_monitor.test_monitor import RecordingSink, ScriptedSlurm, squeue
from tests.slurm_monitor.test_sacct import doc, job_v0038

pytestmark = pytest.mark.django_db(transaction=True)

RELEASE = "23.11"
JOB1_RUNNING = dict(shapes.JOBS[1], id=1)  # bob's, running on cn01
JOB2_PENDING = dict(shapes.JOBS[0], id=2)  # alice's, waiting for resources
JOB2_RUNNING = dict(JOB2_PENDING, state="RUNNING", reason="None", nodes="gpu01", start=1700000100)
JOB3_RUNNING = dict(shapes.JOBS[1], id=3)
JOB3_FAILED = dict(JOB3_RUNNING, state="FAILED", reason="NonZeroExitCode", end=1700000700, raw_exit=3 << 8)


class DataSink(RecordingSink):
    """RecordingSink that also keeps each ``jobs`` event's payload."""

    def __init__(self) -> None:
        super().__init__()
        self.payloads: list[tuple[str, dict]] = []

    async def publish(self, channel, event, data):
        if channel == "jobs":
            self.payloads.append((event, dict(data)))
        return await super().publish(channel, event, data)


class Slurm(ScriptedSlurm):
    """squeue from a script; ``sacct -j`` answers ``accounting`` (the records of ``sacct
    --json``), the gap query (``-S``/``-E``) ``ended`` (default: ``accounting`` too)."""

    def __init__(self, script: list, accounting: list | None = None, ended: list | None = None) -> None:
        super().__init__(RELEASE, script)
        self.accounting = accounting or []
        self.ended = self.accounting if ended is None else ended
        self.sacct_calls: list[list[str]] = []
        self.gap_calls: list[list[str]] = []

    async def __call__(self, argv, timeout):
        if argv[0] == "sacct" and "-S" in argv:
            self.gap_calls.append(list(argv))
            return CommandResult(tuple(argv), 0, json.dumps(doc(*self.ended)), "", 0.0)
        if argv[0] == "sacct":
            self.sacct_calls.append(list(argv))
            asked = argv[-1].split(",")
            found = [r for r in self.accounting + self.ended if str(r["job_id"]) in asked]
            return CommandResult(tuple(argv), 0, json.dumps(doc(*found)), "", 0.0)
        return await super().__call__(argv, timeout)


async def run_until_settled(script: list, accounting: list | None = None, ended: list | None = None,
                            history: History = History(interval=3600, sacct_batch=100),
                            ) -> tuple[DataSink, Slurm, Monitor]:
    """One start of the long-running monitor (``Monitor.run``, as the service runs it), stopped
    once its first jobs poll and the history step after it are over (a second poll began)."""
    slurm = Slurm(script, accounting, ended)
    sink = DataSink()
    monitor = Monitor(SlurmCollector(runner=slurm, timeout=5), sink,
                      Intervals(jobs=0.05, nodes=0.05, metrics=3600), source="slurm", history=history)
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(stop))

    async def settled():
        while monitor.stats["jobs_polls"] < 2 or monitor.stats["nodes_polls"] < 1:
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(settled(), 60)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    return sink, slurm, monitor


def job_events(sink: DataSink) -> list[tuple[str, str, str | None, str | None]]:
    return [(event, data["job_id"], data.get("previous_state"), data["state"]) for event, data in sink.payloads]


async def test_a_restart_reports_what_it_missed_once_and_sacct_ends_the_vanished():
    # Monitor A: job 1 runs, job 2 waits. Nothing saved yet: its first poll is the baseline.
    sink_a, slurm_a, _ = await run_until_settled([squeue(RELEASE, [JOB1_RUNNING, JOB2_PENDING])])
    assert sink_a.payloads == [] and sink_a.notes == []
    assert slurm_a.gap_calls == []  # nothing saved before: no gap to ask about

    # While it was down: job 2 started, job 1 failed (exit 3) and Slurm purged it.
    sink_b, slurm_b, _ = await run_until_settled(
        [squeue(RELEASE, [JOB2_RUNNING])],
        [job_v0038(1, "FAILED", exit_code={"status": "ERROR", "return_code": 3})])
    assert job_events(sink_b) == [
        ("job_removed", "1", None, "RUNNING"),  # squeue no longer lists it
        ("job_state_changed", "2", "PENDING", "RUNNING"),  # missed while down
        ("job_state_changed", "1", "RUNNING", "FAILED"),  # how it ended: sacct's word
        ("job_removed", "1", None, "FAILED"),  # a viewer upserting the change drops it again
    ]
    assert slurm_b.sacct_calls == [["sacct", "--json", "--allusers", "-j", "1"]]
    assert len(slurm_b.gap_calls) == 1  # it named job 1 too: known, so the settle path's alone
    assert [(n.type, n.user, n.data["job_id"], n.data["exit_code"]) for n in sink_b.notes] == [
        ("job_failed", "bob", "1", 3)]
    # each owner gets its job's events too, once
    assert [e for _, e, k in sink_b.events("user:alice")] == ["job_state_changed"]
    assert [e for _, e, k in sink_b.events("user:bob")] == ["job_removed", "job_state_changed", "job_removed"]

    # A third start with nothing changed: nothing to report, sacct not asked again.
    sink_c, slurm_c, _ = await run_until_settled(
        [squeue(RELEASE, [JOB2_RUNNING])],
        [job_v0038(1, "FAILED", exit_code={"status": "ERROR", "return_code": 3})])
    assert sink_c.payloads == [] and sink_c.notes == [] and slurm_c.sacct_calls == []
    assert [s for s in sink_c.sent if s[0] == "nodes"] == []  # the nodes' baseline was saved too


async def test_a_job_already_reported_ended_is_not_notified_again_after_a_purge():
    # Monitor A sees job 3 run, then fail: its terminal event and notification go out once.
    sink_a, _, _ = await run_until_settled([squeue(RELEASE, [JOB3_RUNNING]), squeue(RELEASE, [JOB3_FAILED])])
    assert [(e, k, s) for e, k, _p, s in job_events(sink_a)] == [("job_state_changed", "3", "FAILED")]
    assert [n.type for n in sink_a.notes] == ["job_failed"]

    # Slurm purged it while the monitor was down; accounting agrees it failed.
    sink_b, slurm_b, _ = await run_until_settled(
        [squeue(RELEASE, [])], [job_v0038(3, "FAILED", exit_code={"status": "ERROR", "return_code": 3})])
    assert slurm_b.sacct_calls == [["sacct", "--json", "--allusers", "-j", "3"]]  # asked, for accounting
    assert job_events(sink_b) == [("job_removed", "3", None, "FAILED")]
    assert sink_b.notes == []  # already told: never a second notification


def test_endings_only_for_jobs_that_left_the_queue_unended():
    from datetime import datetime, timedelta, timezone

    from slurm_monitor import history, store
    from tests.slurm_monitor.test_history import job, snap

    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    before = snap(job("1", "PENDING"), job("2"), job("3", "COMPLETED"), job("4"), job("5"))
    store.save_jobs(None, before, now=t0)
    store.save_jobs(before, snap(job("4")), now=t0 + timedelta(minutes=1))  # 1, 2, 3, 5 vanished
    ended = {"state_flags": [], "exit_code": None, "signal": None, "end_time": 1700000800, "start_time": None}
    answers = {"1": {**ended, "state": "CANCELLED"}, "2": {**ended, "state": "RUNNING"},  # accounting lags
               "3": {**ended, "state": "COMPLETED", "exit_code": 0}, "4": {**ended, "state": "FAILED"},
               "5": {**ended, "state": "UNKNOWN"}}
    found = history.endings(answers)
    assert [(b.job_id, b.state, a.state, a.end_time) for b, a in found] == [
        ("1", "PENDING", "CANCELLED", 1700000800)]  # 3 was reported ended; 4 is squeue's to tell
    history.save_accounting(list(answers), answers, t0)
    assert history.endings(answers) == []  # settled: never again
