"""Interest-driven polling (issue 14): one batched squeue --start and one
sstat per cycle for the union of watches, job_progress when the figures change, the REST
detail's start_estimate/live_efficiency, and the low-usage note once per job. Slurm is
scripted here (the real one-node cluster: test_interest_slurm.py; the endpoint:
test_interest_watch.py)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from slurm_monitor import history, interest, progress, store
from slurm_monitor.collector import CommandResult, SlurmCollector
from slurm_monitor.events import iso
from slurm_monitor.interest import InterestConfig
from slurm_monitor.monitor import History, Monitor
from tests.slurm_monitor import shapes
from tests.slurm_monitor.test_history import T0, job, snap
from tests.slurm_monitor.test_monitor import RecordingSink, ScriptedSlurm, squeue
from tests.slurm_monitor.test_sacct import doc, job_v0038

pytestmark = pytest.mark.django_db

NOW = 1700000700  # the monitor's clock: job 102 has run 600 s on 8 CPUs
PENDING_101 = shapes.JOBS[0]  # alice's, gpu partition
RUNNING_102 = shapes.JOBS[1]  # bob's, 8 CPUs, 8000 MB
ESTIMATE = "2023-11-14T23:00:00"


def local(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").timestamp())


class Slurm(ScriptedSlurm):
    """squeue --json from the script; ``squeue --start`` prints ``start`` for each pending id it
    is asked about, ``sstat`` prints ``steps``; every command line is kept."""

    def __init__(self, *answers, start=ESTIMATE, sstat_cpu="00:40:00", sstat_mem="2000M", accounting=()):
        super().__init__("22.05", list(answers) or [squeue("22.05", [])])
        self.start, self.sstat_cpu, self.sstat_mem = start, sstat_cpu, sstat_mem
        self.accounting = list(accounting)
        self.lines: list[list[str]] = []

    async def __call__(self, argv, timeout):
        self.lines.append(list(argv))
        ids = argv[argv.index("-j") + 1].split(",") if "-j" in argv else []
        if argv[0] == "squeue" and "--start" in argv:
            return CommandResult(tuple(argv), 0, "".join(f"{i}|{self.start}\n" for i in ids if i == "101"), "", 0.0)
        if argv[0] == "sstat":
            out = "".join(f"{i}.batch|1|00:05:00|1M|cpu={self.sstat_cpu},mem={self.sstat_mem},pages=0\n"
                          for i in ids if i == "102")
            return CommandResult(tuple(argv), 0, out, "", 0.0)
        if argv[0] == "sacct":
            return CommandResult(tuple(argv), 0, json.dumps(doc(*self.accounting)), "", 0.0)
        return await super().__call__(argv, timeout)

    def named(self, *words):
        return [line for line in self.lines if all(w in line for w in words)]


def make_monitor(slurm, **config):
    sink = RecordingSink()
    monitor = Monitor(SlurmCollector(runner=slurm, timeout=5), sink, clock=lambda: NOW,
                      history=History(interval=0, sacct_batch=100),
                      interest=InterestConfig(interval=0, **config))
    return monitor, sink


def watchers(count, job_id, prefix="viewer"):
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"{prefix}{n}") for n in range(count)])
    for user in users:
        interest.record_watch(user, job_id)
    return users


async def watched(slurm, viewers=1):
    """A monitor that polled once (the rows exist), then ``viewers`` pages watch 101 and 102."""
    from asgiref.sync import sync_to_async

    monitor, sink = make_monitor(slurm)
    await monitor.poll_jobs()
    await sync_to_async(watchers)(viewers, "101")
    await sync_to_async(watchers)(viewers, "102", prefix="other")
    return monitor, sink


def progress_events(sink, target=None):
    return [s for s in sink.sent if s[1] == "job_progress" and (target is None or s[0] == target)]


# --- the monitor: one batched command per cycle, whatever the viewers ------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("viewers", [1, 100])
async def test_the_union_of_watches_costs_one_command_each_per_cycle(viewers):
    from asgiref.sync import sync_to_async

    slurm = Slurm(squeue("22.05", [PENDING_101, RUNNING_102, shapes.JOBS[2]]))
    monitor, sink = await watched(slurm, viewers)
    assert slurm.named("--start") == [] and slurm.named("sstat") == []  # nobody watched that poll
    await sync_to_async(watchers)(1, "103", prefix="late")  # FAILED: nothing to ask
    await monitor.poll_jobs()
    assert slurm.named("squeue", "--start") == [
        ["squeue", "--start", "--noheader", "--format", "%i|%S", "-j", "101"]]
    assert slurm.named("sstat") == [["sstat", "--allsteps", "--parsable2", "--noheader", "--format",
                                     progress.SSTAT_FIELDS, "-j", "102"]]
    await monitor.poll_jobs()
    assert len(slurm.named("--start")) == 2 and len(slurm.named("sstat")) == 2  # once per cycle


@pytest.mark.django_db(transaction=True)
async def test_a_change_is_one_job_progress_event_on_the_jobs_usual_channels():
    slurm = Slurm(squeue("22.05", [PENDING_101, RUNNING_102]))
    monitor, sink = await watched(slurm, 3)
    await monitor.poll_jobs()
    assert sorted(progress_events(sink)) == [("jobs", "job_progress", "101"), ("jobs", "job_progress", "102"),
                                             ("user:alice", "job_progress", "101"),
                                             ("user:bob", "job_progress", "102")]
    await monitor.poll_jobs()  # nothing changed: nothing sent
    assert len(progress_events(sink)) == 4
    slurm.start = "2023-11-15T01:30:00"  # the scheduler moved its estimate
    await monitor.poll_jobs()
    assert progress_events(sink)[4:] == [("jobs", "job_progress", "101"), ("user:alice", "job_progress", "101")]
    assert monitor.stats["job_progress_sent"] == 3


@pytest.mark.django_db(transaction=True)
async def test_the_rest_detail_serves_the_figures_the_monitor_stored():
    from asgiref.sync import sync_to_async

    monitor, _ = await watched(Slurm(squeue("22.05", [PENDING_101, RUNNING_102])))
    await monitor.poll_jobs()

    def read(job_id):
        api = APIClient()
        api.force_authenticate(get_user_model().objects.get(username="viewer0"))
        return api.get(f"/api/cluster/jobs/{job_id}").json()

    pending, running = await sync_to_async(read)("101"), await sync_to_async(read)("102")
    assert pending["start_estimate"] == iso(local(ESTIMATE)) and pending["live_efficiency"] is None
    live = running["live_efficiency"]
    assert running["start_estimate"] is None
    assert live["cpu"] == {"used_seconds": 2400.0, "available_seconds": 4800, "percent": 50.0}
    assert live["memory"] == {"max_rss_mb": 2000.0, "requested_mb": 8000, "percent": 25.0}
    assert live["measured_at"] == iso(NOW)


def test_an_unwatched_job_has_null_figures():
    store.save_jobs(None, snap(job("5", "PENDING")), now=T0)
    api = APIClient()
    api.force_authenticate(get_user_model().objects.create_user("viewer"))
    body = api.get("/api/cluster/jobs/5").json()
    assert body["start_estimate"] is None and body["live_efficiency"] is None


@pytest.mark.django_db(transaction=True)
async def test_a_failing_command_is_logged_once_loudly_and_the_poll_goes_on(caplog):
    class NoSstat(Slurm):
        async def __call__(self, argv, timeout):
            if argv[0] == "sstat":
                self.lines.append(list(argv))
                return CommandResult(tuple(argv), 1, "", "sstat: error: no accounting", 0.0)
            return await super().__call__(argv, timeout)

    monitor, sink = await watched(NoSstat(squeue("22.05", [PENDING_101, RUNNING_102])))
    await monitor.poll_jobs()
    await monitor.poll_jobs()
    assert monitor.stats["interest_sstat_failed"] == 2 and monitor.stats["jobs_polls"] == 3
    assert [r.levelname for r in caplog.records if "sstat for watched jobs" in r.message] == ["WARNING", "INFO"]
    assert [e[2] for e in progress_events(sink, "jobs")] == ["101"]  # the estimate still went out


# --- the gentle note -----------------------------------------------------------------------


def idle_job(job_id, **changes):
    """A COMPLETED job that used 10 % of its CPU time and 1 GiB of 8 GiB: under a quarter."""
    return job_v0038(job_id, elapsed=3600, cpus=4, total=(1440, 0), max_rss_bytes=1024**3, **changes)


@pytest.mark.django_db(transaction=True)
async def test_a_finished_job_that_used_little_gets_one_gentle_note():
    # jobs 201 (idle) and 202 (busy) ran, then left the queue; sacct says what they used
    ended = int(time.time()) - 60  # accounting comes soon after the end: within the window
    running = [dict(PENDING_101, id=n, state="RUNNING", start=ended - 3600) for n in (201, 202)]
    slurm = Slurm(squeue("22.05", running), squeue("22.05", []),
                  accounting=[idle_job(201, end=ended),
                              job_v0038(202, elapsed=3600, cpus=4, total=(13000, 0), max_rss_bytes=7 * 1024**3,
                                        end=ended)])
    monitor, sink = make_monitor(slurm)
    for _ in range(4):
        await monitor.poll_jobs()
    notes = [n for n in sink.notes if n.type == "job_low_usage"]
    assert len(notes) == 1, sink.notes
    note = notes[0]
    assert (note.user, note.data["job_id"], note.severity) == ("alice", "201", "info")
    assert note.data["cpu_percent"] == 10.0 and note.data["memory_percent"] == 12.5
    assert "10 % of the CPU time its 4 CPUs offered" in note.message
    assert "12.5 % of the 8192 MB of memory it asked for" in note.message
    assert len(slurm.named("sacct")) == 1 and monitor.stats["low_usage_notes"] == 1


@pytest.mark.django_db(transaction=True)
async def test_the_note_can_be_switched_off_and_its_fraction_set():
    from asgiref.sync import sync_to_async

    def finished(job_id, accounting):
        store.save_jobs(None, snap(job(job_id, "COMPLETED")), now=datetime.now(timezone.utc))
        store.save_jobs(snap(job(job_id, "COMPLETED")), {}, now=datetime.now(timezone.utc))
        history.save_accounting([job_id], {job_id: accounting}, datetime.now(timezone.utc))

    from slurm_monitor.sacct import parse_sacct

    accounting = parse_sacct(doc(idle_job(301, end=int(time.time()) - 60)))["301"].as_dict()  # 10 % CPU, 12.5 % memory
    await sync_to_async(finished)("301", accounting)
    off, off_sink = make_monitor(Slurm(), low_usage_fraction=0)
    off.jobs = {}
    await off.interest.step(off)
    assert off_sink.notes == []
    strict, strict_sink = make_monitor(Slurm(), low_usage_fraction=0.05)
    strict.jobs = {}
    await strict.interest.step(strict)  # 10 % and 12.5 % are not under 5 %
    assert strict_sink.notes == []
    again, again_sink = make_monitor(Slurm())
    again.jobs = {}
    await again.interest.step(again)
    assert again_sink.notes == []  # judged once already (by the strict monitor): never again


def test_low_usage_judgement():
    base = {"state": "COMPLETED", "elapsed_seconds": 3600, "cpus": 4, "total_cpu_seconds": 3600.0,
            "max_rss_mb": 4096.0, "memory_mb": 8192, "gpus": 0}
    assert progress.low_usage(base, 0.25) is None  # 25 % CPU, 50 % memory: not under a quarter
    assert progress.low_usage({**base, "total_cpu_seconds": 3000.0}, 0.25)["cpu_percent"] == 20.8
    assert progress.low_usage({**base, "state": "FAILED", "total_cpu_seconds": 1.0}, 0.25) is None
    assert progress.low_usage({**base, "elapsed_seconds": 30, "total_cpu_seconds": 1.0}, 0.25) is None
    assert progress.low_usage({**base, "max_rss_mb": None, "total_cpu_seconds": None}, 0.25) is None
    assert progress.low_usage({**base, "total_cpu_seconds": 1.0}, 0) is None


def test_the_kind_is_a_choice_in_the_notification_rules():
    from hub.notify import notification_rules

    assert "job_low_usage" in notification_rules.KINDS
    assert notification_rules.kind_for("job_low_usage", cluster_wide=False) == "job_low_usage"
    assert notification_rules.clean_channels({"job_low_usage": ["email"]}) == {"job_low_usage": ["page", "email"]}


# --- parsing what Slurm prints --------------------------------------------------------------


def test_parse_start_and_sstat():
    assert progress.parse_start("101|2023-11-14T23:00:00\n10_1|N/A\nbroken\n") == {
        "101": local("2023-11-14T23:00:00"), "10_1": None}
    # 22.05 without job accounting gathered: no task, a garbage AveCPU (seen on this machine)
    assert progress.parse_sstat("2.batch|0|213503982334-14:25:51|||\n") == {}
    text = ("7.batch|1|00:01:00|100M|cpu=00:01:00,mem=100M,pages=0\n"
            "7.0|4|1-00:00:00|50M|cpu=4-00:00:00,mem=200M\n"
            "10_1.0|2|01:00.500|1G|\n")
    assert progress.parse_sstat(text) == {"7": progress.StepUsage(60.0 + 4 * 86400, 200.0),
                                          "10_1": progress.StepUsage(121.0, 1024.0)}


def test_a_cpu_figure_no_allocation_could_reach_is_dropped():
    running = job("9", cpus=2)  # started at 1700000100
    live = progress.live_efficiency(running, progress.StepUsage(10**9, 100.0), 1700000700)
    assert live["cpu"]["used_seconds"] is None and live["memory"]["max_rss_mb"] == 100.0
    assert progress.live_efficiency(running, None, time.time()) is None


def test_figures_go_with_their_job_when_history_purges_it():
    from slurm_monitor.models import JobProgress

    store.save_jobs(None, snap(job("5", "PENDING")), now=T0)
    store.save_jobs(snap(job("5", "PENDING")), {}, now=T0)
    interest.save_progress({"5": (1700000000, None)})
    interest.mark_usage_checked(["5"])
    assert JobProgress.objects.filter(job_id="5").exists()
    assert history.purge(T0 + timedelta(days=1), 10) == 1 and not JobProgress.objects.exists()

