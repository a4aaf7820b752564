"""Jobs that were submitted and ended while the monitor was down (issue 13, ``slurm_monitor.gap``):
after a restart one bounded sacct query for the gap names them; each never-seen one gets one
terminal event, one notification for its owner and its history row; known jobs are not doubled;
the gap and the report are capped, with a warning."""

from __future__ import annotations

import logging
import time
from datetime import datetime

import pytest
from asgiref.sync import sync_to_async

from slurm_monitor import gap, history, store_read
from slurm_monitor.events import iso
from slurm_monitor.monitor import History
from tests.slurm_monitor.test_restart import JOB1_RUNNING, JOB3_FAILED, JOB3_RUNNING, RELEASE, job_events, \
    run_until_settled
from tests.slurm_monitor.test_monitor import squeue
from tests.slurm_monitor.test_sacct import job_v0038

pytestmark = pytest.mark.django_db(transaction=True)

EXIT3 = {"status": "ERROR", "return_code": 3}
# ended a moment ago, as the gap query (-S/-E) would find them; alice's "train", on batch
NOW = int(time.time())
DONE_7 = job_v0038(7, "COMPLETED", end=NOW - 120)
FAILED_8 = job_v0038(8, "FAILED", exit_code=EXIT3, end=NOW - 60)

finished_jobs = sync_to_async(lambda: store_read.list_jobs(view="finished"))


async def test_jobs_that_came_and_went_while_down_are_reported_once_with_a_history_row():
    await run_until_settled([squeue(RELEASE, [JOB1_RUNNING])])  # monitor A: job 1 runs

    # While it was down, jobs 7 and 8 were submitted, ran, ended and were purged from squeue.
    sink, slurm, monitor = await run_until_settled([squeue(RELEASE, [JOB1_RUNNING])], ended=[DONE_7, FAILED_8])
    assert len(slurm.gap_calls) == 1
    argv = slurm.gap_calls[0]
    assert argv[:5] == ["sacct", "--json", "--allusers", "-X", "-S"] and argv[6] == "-E" and argv[8] == "-s"
    assert set(argv[9].split(",")) >= {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY"}
    assert job_events(sink) == [("job_submitted", "7", None, "COMPLETED"), ("job_removed", "7", None, "COMPLETED"),
                                ("job_submitted", "8", None, "FAILED"), ("job_removed", "8", None, "FAILED")]
    assert [(n.type, n.user, n.data["job_id"], n.data["exit_code"]) for n in sink.notes] == [
        ("job_completed", "alice", "7", 0), ("job_failed", "alice", "8", 3)]
    assert [e for _, e, _k in sink.events("user:alice")] == ["job_submitted", "job_removed"] * 2
    assert monitor.stats["jobs_reported_from_gap"] == 2

    # their history rows: REST's finished view and the job page find them; the history step
    # then asks sacct -j for their usage (the gap query is -X: no steps)
    finished = await finished_jobs()
    assert {j["job_id"]: (j["state"], j["exit_code"], j["name"]) for j in finished["results"]} == {
        "7": ("COMPLETED", 0, "train"), "8": ("FAILED", 3, "train")}
    detail = await sync_to_async(history.job_detail)("8")
    assert detail["transitions"] == [{"state": "FAILED", "at": iso(NOW - 60)}]
    assert slurm.sacct_calls == [["sacct", "--json", "--allusers", "-j", "7,8"]]
    assert detail["accounting"]["exit_code"] == 3 and detail["efficiency"]["cpu"]["percent"] is not None

    # Another restart with the same answer: nothing again (each has a row now).
    sink_c, slurm_c, _ = await run_until_settled([squeue(RELEASE, [JOB1_RUNNING])], ended=[DONE_7, FAILED_8])
    assert len(slurm_c.gap_calls) == 1 and sink_c.payloads == [] and sink_c.notes == []


async def test_a_job_the_monitor_knew_is_not_doubled_by_the_gap():
    # Monitor A saw job 3 fail (told once) and job 1 run.
    sink_a, _, _ = await run_until_settled([squeue(RELEASE, [JOB1_RUNNING, JOB3_RUNNING]),
                                            squeue(RELEASE, [JOB1_RUNNING, JOB3_FAILED])])
    assert [n.data["job_id"] for n in sink_a.notes] == ["3"]
    # Down: both purged; accounting names 1 (failed), 3, and 7 (never seen) as ended in the gap.
    ended = [job_v0038(1, "FAILED", exit_code=EXIT3), job_v0038(3, "FAILED", exit_code=EXIT3), DONE_7]
    sink, slurm, _ = await run_until_settled([squeue(RELEASE, [])], ended=ended)
    events = job_events(sink)
    for job_id, count in (("1", 1), ("3", 0), ("7", 1)):  # 1: by the settle path; 3: already told
        terminal = [e for e in events if e[1] == job_id and e[0] != "job_removed"]
        assert len(terminal) == count, (job_id, events)
    assert sorted((n.type, n.data["job_id"]) for n in sink.notes) == [("job_completed", "7"), ("job_failed", "1")]


async def test_the_report_is_capped_to_the_latest_ended_with_a_warning(caplog):
    await run_until_settled([squeue(RELEASE, [])])
    caplog.set_level(logging.WARNING, "slurm_monitor")
    sink, _, _ = await run_until_settled([squeue(RELEASE, [])], ended=[FAILED_8, DONE_7],
                                         history=History(interval=3600, gap_jobs=1))
    assert [n.data["job_id"] for n in sink.notes] == ["8"]  # ended last
    assert "gap: 2 jobs ended unseen while the monitor was down; only the 1 that ended last are reported" \
        in caplog.text
    assert [j["job_id"] for j in (await finished_jobs())["results"]] == ["8"]


def test_the_gap_is_cut_to_its_last_hours_with_a_warning(caplog):
    now = datetime(2026, 12, 3, 12, 0).timestamp()
    assert gap.window(None, now, 24, 14) is None  # never saved: no gap
    assert gap.window(now - 600, now, 24, 14) == gap.Window(now - 600 - gap.SLACK_SECONDS, now)
    with caplog.at_level(logging.WARNING, "slurm_monitor"):
        assert gap.window(now - 3 * 86400, now, 24, 14) == gap.Window(now - 86400, now)
        assert gap.window(now - 3 * 86400, now, 24, 0.5) == gap.Window(now - 43200, now)  # history's days
    assert "the monitor was down 72.0 h; only jobs that ended after" in caplog.text
    assert "(the last 24.0 h, SLURM_MONITOR_GAP_HOURS) are reported" in caplog.text
