"""History (issue 14): a job squeue forgets stays findable, sacct says how it ended, old ones
are purged in bounded steps, transitions are recorded and bounded."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from slurm_monitor import history, store
from slurm_monitor.collector import CommandResult, SlurmCollector
from slurm_monitor.models import ClusterJob, JobTransition
from slurm_monitor.monitor import History, Monitor
from slurm_monitor.snapshot import Job
from tests.slurm_monitor.test_monitor import RecordingSink
from tests.slurm_monitor.test_sacct import doc, job_v0038

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def job(job_id, state="RUNNING", user="alice", **changes):
    base = Job(job_id=job_id, name=f"j{job_id}", user=user, partition="batch", state=state, reason=None,
               nodes="cn01", node_count=1, cpus=4, gpus=0, memory_mb=8192, submit_time=1700000000,
               start_time=1700000100 if state != "PENDING" else None,
               end_time=1700000700 if state in ("COMPLETED", "FAILED") else None,
               time_limit_minutes=60, exit_code=0 if state == "COMPLETED" else None, signal=None)
    return dataclasses.replace(base, **changes)


def snap(*jobs):
    return {j.job_id: j for j in jobs}


@pytest.fixture
def api():
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_user("viewer"))
    return client


def ids(body):
    return [j["job_id"] for j in body["results"]]


def test_a_job_squeue_forgets_stays_as_history(api):
    first = snap(job("1", "PENDING"), job("2"), job("3", "COMPLETED"))
    store.save_jobs(None, first, now=T0)
    second = snap(job("1"))  # 2 vanished while running, 3 purged by Slurm after completing
    store.save_jobs(first, second, now=T0 + timedelta(minutes=5))
    assert store.load_jobs() == second  # the baseline of --once: what squeue lists only
    gone = ClusterJob.objects.get(job_id="2")
    assert gone.left_queue_at == T0 + timedelta(minutes=5) and gone.ended_at == T0 + timedelta(minutes=5)
    done = ClusterJob.objects.get(job_id="3")
    assert done.ended_at == datetime.fromtimestamp(1700000700, tz=timezone.utc)  # Slurm's end time
    assert ids(api.get("/api/cluster/jobs").json()) == ["1"]
    assert ids(api.get("/api/cluster/jobs?view=finished").json()) == ["2", "3"]  # newest end first
    body = api.get("/api/cluster/jobs?view=all").json()
    assert ids(body) == ["1", "2", "3"] and [j["in_queue"] for j in body["results"]] == [True, False, False]
    # search by id finds live and finished jobs alike
    assert ids(api.get("/api/cluster/jobs?view=all&job=2").json()) == ["2"]
    assert ids(api.get("/api/cluster/jobs?job=2").json()) == []  # active view: no longer listed


def test_a_baseline_save_also_keeps_the_vanished():
    store.save_jobs(None, snap(job("1"), job("2")), now=T0)
    store.save_jobs(None, snap(job("1")), now=T0 + timedelta(seconds=5))  # a restarted monitor
    assert ClusterJob.objects.get(job_id="2").left_queue_at is not None
    assert set(store.load_jobs()) == {"1"}


def test_array_task_ids_are_findable_live_and_finished(api):
    pending = job("10", "PENDING", array_job_id="10", array_task_id=None, array_tasks="2-3")
    task1 = job("11", array_job_id="10", array_task_id=1)
    store.save_jobs(None, snap(pending, task1), now=T0)
    assert ids(api.get("/api/cluster/jobs?job=10_1").json()) == ["11"]
    assert ids(api.get("/api/cluster/jobs?job=10_3").json()) == ["10"]  # waits in the array's record
    assert ids(api.get("/api/cluster/jobs?job=10").json()) == ["10", "11"]
    store.save_jobs(snap(pending, task1), snap(pending), now=T0 + timedelta(minutes=1))
    assert ids(api.get("/api/cluster/jobs?view=finished&job=10_1").json()) == ["11"]
    assert api.get("/api/cluster/jobs?job=10_x").status_code == 400


def test_transitions_are_recorded_with_slurms_times_and_bounded():
    store.save_jobs(None, snap(job("1", "PENDING")), now=T0)
    store.save_jobs(snap(job("1", "PENDING")), snap(job("1")), now=T0 + timedelta(seconds=30))
    states = list(JobTransition.objects.filter(job_id="1").order_by("at").values_list("state", "at"))
    assert states == [("PENDING", datetime.fromtimestamp(1700000000, tz=timezone.utc)),
                      ("RUNNING", datetime.fromtimestamp(1700000100, tz=timezone.utc))]
    previous = snap(job("1"))
    for n in range(store.MAX_TRANSITIONS + 5):  # a job suspended and resumed over and over
        current = snap(job("1", "SUSPENDED" if n % 2 == 0 else "RUNNING"))
        store.save_jobs(previous, current, now=T0 + timedelta(minutes=n + 1))
        previous = current
    kept = JobTransition.objects.filter(job_id="1")
    assert kept.count() == store.MAX_TRANSITIONS
    assert kept.order_by("-at").first().at == T0 + timedelta(minutes=store.MAX_TRANSITIONS + 5)


def test_purge_is_bounded_and_keeps_what_squeue_lists():
    jobs = snap(*(job(str(n)) for n in range(1, 8)))
    store.save_jobs(None, jobs, now=T0)
    store.save_jobs(jobs, snap(job("7")), now=T0 + timedelta(days=1))  # 1..6 left the queue
    cutoff = T0 + timedelta(days=2)
    assert history.purge(cutoff, limit=4) == 4
    assert history.purge(cutoff, limit=4) == 2
    assert history.purge(cutoff, limit=4) == 0
    assert list(ClusterJob.objects.values_list("job_id", flat=True)) == ["7"]
    assert not JobTransition.objects.exclude(job_id="7").exists()


def test_accounting_settles_a_vanished_job_and_gives_up_on_unknown_ones():
    store.save_jobs(None, snap(job("201"), job("202"), job("203")), now=T0)
    store.save_jobs(snap(job("201"), job("202"), job("203")), snap(job("203")), now=T0 + timedelta(minutes=1))
    asked = history.needing_accounting(10, max_tries=2)
    assert asked == ["201", "202"]  # ended (left the queue), no accounting yet; 203 still runs
    answer = {"201": {"state": "FAILED", "exit_code": 3, "signal": None, "end_time": 1700000700,
                      "start_time": 1700000100, "state_flags": []}}
    assert history.save_accounting(asked, answer, T0) == 1
    row = ClusterJob.objects.get(job_id="201")
    assert (row.state, row.record["exit_code"], row.record["end_time"]) == ("FAILED", 3, 1700000700)
    assert JobTransition.objects.filter(job_id="201").order_by("-at").first().state == "FAILED"
    assert history.needing_accounting(10, max_tries=2) == ["202"]
    history.save_accounting(["202"], {}, T0)  # sacct does not know it (yet): a second try, then no more
    assert history.needing_accounting(10, max_tries=2) == []


@pytest.mark.django_db(transaction=True)
async def test_the_monitor_asks_sacct_once_per_step_in_one_batch():
    squeue_answers = [snap(job("201"), job("202"), job("203")), snap(job("203"))]
    calls = []

    class Collector(SlurmCollector):
        async def collect_jobs(self):
            return squeue_answers.pop(0) if len(squeue_answers) > 1 else squeue_answers[0]

    async def runner(argv, timeout):
        calls.append(list(argv))
        failed = job_v0038(201, "FAILED", exit_code={"status": "ERROR", "return_code": 3})  # code known
        return CommandResult(tuple(argv), 0, json.dumps(doc(failed, job_v0038(202))), "", 0.0)

    monitor = Monitor(Collector(runner=runner), RecordingSink(),
                      history=History(interval=0.0, sacct_batch=10))
    await monitor.poll_jobs()  # baseline: nothing ended
    assert calls == []
    await monitor.poll_jobs()  # 201 and 202 vanished: one sacct for both
    assert calls == [["sacct", "--json", "--allusers", "-j", "201,202"]]

    def check():
        return {r.job_id: (r.state, r.accounting is not None) for r in ClusterJob.objects.all()}

    assert await sync_to_async(check)() == {"201": ("FAILED", True), "202": ("COMPLETED", True),
                                            "203": ("RUNNING", False)}
    await monitor.poll_jobs()  # nothing new ended: no command
    assert len(calls) == 1 and monitor.stats["history_accounted"] == 2
