"""Reminders (issue 15): a running job at 80 % of its time limit, once; a node going down,
told to the owners of the jobs on it and nobody else. The pure core, the monitor's state
around it (baseline, restart), and the hook in the monitor's polls."""

from __future__ import annotations

import dataclasses

import pytest

from slurm_monitor.collector import SlurmCollector
from slurm_monitor.diff import Changes
from slurm_monitor.monitor import Monitor
from slurm_monitor.reminders import (
    MAX_HOSTS,
    Reminders,
    expand_hostlist,
    node_down_notifications,
    reminder_key,
    sent_keys,
    time_limit_due,
    went_down,
)
from slurm_monitor.snapshot import Job, Node
from tests.slurm_monitor import shapes
from tests.slurm_monitor.test_monitor import RecordingSink, ScriptedSlurm, squeue

T0 = 1_700_000_000  # a job's start (2023-11-14T22:13:20Z)


def job(job_id: str, user: str = "alice", state: str = "RUNNING", nodes: str = "cn01",
        limit: int | None = 10, start: int | None = T0, end: int | None = None) -> Job:
    return Job(job_id=job_id, name="train", user=user, partition="cpu", state=state, reason=None,
               nodes=nodes, node_count=1, cpus=1, gpus=0, memory_mb=100, submit_time=T0 - 60,
               start_time=start, end_time=end, time_limit_minutes=limit, exit_code=None, signal=None)


def node(name: str, state: str = "MIXED", flags: tuple[str, ...] = (), reason: str | None = None) -> Node:
    return Node(name=name, state=state, flags=flags, reason=reason, partitions=("cpu",), cpus=32,
                alloc_cpus=8, cpu_load=1.0, real_memory_mb=1000, alloc_memory_mb=100,
                free_memory_mb=900, gpus=0, alloc_gpus=0)


def snap(*items):
    return {getattr(i, "job_id", None) or i.name: i for i in items}


async def remind(reminders: Reminders, previous, current, now) -> list:
    return list((await reminders.jobs(Changes(), previous, current, now)).notifications)


# --- time limits ----------------------------------------------------------------------------


async def test_the_mark_is_reported_once_with_the_time_left():
    jobs = snap(job("7"))  # 10 minute limit: the mark is at 480 s
    reminders = Reminders(0.8)
    assert await remind(reminders, None, jobs, T0 + 100) == []  # baseline
    assert await remind(reminders, jobs, jobs, T0 + 479) == []
    [note] = await remind(reminders, jobs, jobs, T0 + 485)
    assert (note.type, note.user, note.severity) == ("job_time_limit", "alice", "warning")
    assert note.title == "Job 7 (train): 115 s left"
    assert "has run 8 min of its 10 min time limit (80 %): 115 s left" in note.message
    assert note.data["remaining_seconds"] == 115 and note.data["time_limit_minutes"] == 10
    assert note.data["ends_at"] == "2023-11-14T22:23:20.000Z"
    for now in (T0 + 500, T0 + 590, T0 + 2000):
        assert await remind(reminders, jobs, jobs, now) == []  # once


async def test_a_configurable_fraction_and_off():
    jobs = snap(job("7", limit=100))
    half = Reminders(0.5)
    await remind(half, None, {}, T0)
    assert await remind(half, {}, jobs, T0 + 2999) == []
    assert [n.data["remaining_seconds"] for n in await remind(half, jobs, jobs, T0 + 3000)] == [3000]
    off = Reminders(0)
    await remind(off, None, {}, T0)
    assert await remind(off, {}, jobs, T0 + 5999) == []


async def test_unlimited_pending_and_unstarted_jobs_are_never_reminded():
    jobs = snap(job("1", limit=None), job("2", state="PENDING", start=None),
                job("3", start=None), job("4", state="COMPLETED"), job("5", limit=0))
    assert time_limit_due(jobs, T0 + 10 ** 9, 0.8) == []
    reminders = Reminders(0.8)
    await remind(reminders, None, {}, T0)
    assert await remind(reminders, {}, jobs, T0 + 10 ** 9) == []


async def test_a_baseline_past_the_mark_is_not_news_but_a_new_job_past_it_is():
    old, new = job("1"), job("2", start=T0 - 1000)
    reminders = Reminders(0.8)
    assert await remind(reminders, None, snap(old), T0 + 600) == []
    assert await remind(reminders, snap(old), snap(old), T0 + 610) == []
    # a job first seen past the mark (it started while the monitor was down): told
    assert [n.data["job_id"] for n in await remind(reminders, snap(old), snap(old, new), T0 + 620)] == ["2"]


async def test_a_requeued_job_started_again_is_reminded_again():
    first = job("9")
    again = dataclasses.replace(first, start_time=T0 + 3600)
    reminders = Reminders(0.8)
    await remind(reminders, None, {}, T0)
    assert len(await remind(reminders, {}, snap(first), T0 + 500)) == 1
    assert await remind(reminders, snap(first), snap(again), T0 + 3700) == []
    assert len(await remind(reminders, snap(again), snap(again), T0 + 3600 + 500)) == 1


async def test_a_restart_asks_what_an_earlier_run_sent_once():
    jobs = snap(job("1"), job("2"))
    asked: list[list[str]] = []

    def already_sent(keys):
        asked.append(list(keys))
        return {reminder_key(jobs["1"])}

    reminders = Reminders(0.8, already_sent=already_sent)  # a fresh run, resumed from saved state
    assert await remind(reminders, jobs, jobs, T0 + 300) == []
    assert asked == []  # nothing due: nothing asked
    assert [n.data["job_id"] for n in await remind(reminders, jobs, jobs, T0 + 500)] == ["2"]
    assert asked == [[reminder_key(jobs["1"]), reminder_key(jobs["2"])]]
    assert await remind(reminders, jobs, jobs, T0 + 550) == [] and len(asked) == 1


async def test_when_the_earlier_reminders_cannot_be_read_nothing_is_sent_and_it_asks_again():
    jobs = snap(job("1"))
    answers: list = [RuntimeError("database down"), set()]

    def already_sent(keys):
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    reminders = Reminders(0.8, already_sent=already_sent)
    assert await remind(reminders, jobs, jobs, T0 + 500) == []
    assert [n.data["job_id"] for n in await remind(reminders, jobs, jobs, T0 + 505)] == ["1"]


@pytest.mark.django_db(transaction=True)
def test_sent_keys_reads_the_hubs_stored_reminders():
    from hub.notify.notifications import create_notification
    from slurm_monitor.reminders import build_time_limit_notification

    sent, other, requeued = job("1"), job("2"), job("3")
    note = build_time_limit_notification(sent, T0 + 500, 0.8)
    create_notification(note.user, note.type, note.title, note.message, note.severity, note.data)
    later = build_time_limit_notification(requeued, T0 + 500, 0.8)  # the run before a requeue
    create_notification(later.user, later.type, later.title, later.message, later.severity, later.data)
    requeued = dataclasses.replace(requeued, start_time=T0 + 10)
    create_notification("alice", "job_failed", "Job 2 failed", "", "error", {"job_id": "2"})
    keys = [reminder_key(j) for j in (sent, other, requeued)]
    assert sent_keys(keys) == {reminder_key(sent)}


# --- nodes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text, names", [
    ("cn01", ["cn01"]),
    ("cn[01-03,07],gpu01", ["cn01", "cn02", "cn03", "cn07", "gpu01"]),
    ("n[8-11]", ["n8", "n9", "n10", "n11"]),
    ("rack[1-2]-n[01-02]", ["rack1-n01", "rack1-n02", "rack2-n01", "rack2-n02"]),
    ("", []),
    ("bad[x-y]", ["bad[x-y]"]),
])
def test_expand_hostlist(text, names):
    assert expand_hostlist(text) == names


def test_expand_hostlist_is_bounded():
    assert len(expand_hostlist("n[0-99999999]")) == MAX_HOSTS


def test_went_down_on_entry_only():
    before = snap(node("a"), node("b"), node("c"), node("d", "DOWN"), node("e"))
    after = snap(node("a", "DOWN"), node("b", "DRAINING"), node("c", "IDLE", ("NOT_RESPONDING",)),
                 node("d", "DRAINED"), node("e", "IDLE"), node("f", "DOWN"))
    assert [n.name for n in went_down(before, after)] == ["a", "b", "c"]
    assert went_down(None, after) == []


def test_node_down_goes_to_the_owners_of_jobs_on_it_only():
    latest = snap(
        job("1", "alice", nodes="cn[01-03]"), job("2", "alice", nodes="cn02"),
        job("3", "bob", nodes="cn04"),  # another node
        job("4", "carol", state="PENDING", nodes=""),
        job("5", "erin", state="NODE_FAIL", nodes="cn02", end=T0 + 990),  # ended by it
        job("6", "fred", state="NODE_FAIL", nodes="cn02", end=T0 - 5000),  # long ago
        job("7", "gina", state="COMPLETED", nodes="cn02", end=T0 + 900),
        job("8", "dave", state="PENDING", nodes=""),  # requeued: ran on cn02 a poll ago
        job("9", "hank", nodes="cn09,cn02"), job("10", "ivan", nodes="cn020,cn[1-3]"),
    )
    before = {**latest, "8": job("8", "dave", nodes="cn02")}
    notes = node_down_notifications([node("cn02", "DOWN", reason="Not responding")], latest, before, T0 + 1000)
    assert [(n.type, n.user, n.data["jobs"]) for n in notes] == [
        ("job_node_down", "alice", ["1", "2"]), ("job_node_down", "dave", ["8"]),
        ("job_node_down", "erin", ["5"]), ("job_node_down", "hank", ["9"])]
    assert notes[0].title == "Node cn02 is down: your jobs 1, 2"
    assert notes[0].message == "Node cn02, where your jobs 1, 2 run, is down (Not responding)."
    assert notes[0].severity == "error"
    drained = node_down_notifications([node("cn04", "DRAINING")], latest, None, T0)
    assert [(n.user, n.severity, n.title) for n in drained] == [
        ("bob", "warning", "Node cn04 is draining: your job 3")]


# --- through the monitor --------------------------------------------------------------------


class NodesScripted(ScriptedSlurm):
    """squeue from one script, the node command from another (the last answer repeats)."""

    def __init__(self, jobs: list, nodes: list) -> None:
        super().__init__("23.11", jobs)
        self.nodes = list(nodes)

    async def __call__(self, argv, timeout):
        if argv[0] == "scontrol" and argv[1:] != ["--version"] or argv[0] == "sinfo":
            from slurm_monitor.collector import CommandResult
            import json

            answer = self.nodes.pop(0) if len(self.nodes) > 1 else self.nodes[0]
            return CommandResult(tuple(argv), 0, json.dumps(shapes.nodes_doc("23.11", answer)), "", 0.0)
        return await super().__call__(argv, timeout)


UP = [dict(shapes.NODES[0], name=n, base="MIXED", flags=[], reason="") for n in ("cn01", "cn02", "cn03")]
CN02_DOWN = [dict(n, base="DOWN", flags=["NOT_RESPONDING"], reason="Not responding")
             if n["name"] == "cn02" else n for n in UP]
ALICE = dict(shapes.JOBS[1], id=201, user="alice", nodes="cn[01-02]", start=T0, limit=10)
BOB = dict(shapes.JOBS[1], id=202, user="bob", nodes="cn03", start=T0, limit=None)


async def test_the_monitor_sends_both_reminders_to_the_owner_only():
    now = [T0 + 100.0]
    slurm = NodesScripted([squeue("23.11", [ALICE, BOB])], [UP, UP, CN02_DOWN])
    sink = RecordingSink()
    monitor = Monitor(SlurmCollector(runner=slurm, timeout=5), sink, persist=False,
                      clock=lambda: now[0], reminders=Reminders(0.8))
    await monitor.poll_jobs()  # baseline
    await monitor.poll_nodes()
    now[0] = T0 + 490
    await monitor.poll_jobs()
    await monitor.poll_nodes()  # still up
    now[0] = T0 + 500
    await monitor.poll_jobs()
    await monitor.poll_nodes()  # cn02 went down
    mine = [(n.type, n.user, n.data.get("job_id") or n.data.get("node")) for n in sink.notes]
    assert mine == [("job_time_limit", "alice", "201"), ("node_down", None, "cn02"),
                    ("job_node_down", "alice", "cn02")]


async def test_the_simulated_cluster_gives_both_reminders_now_and_then():
    """``--mock`` (what ``scripts/run`` shows without Slurm): jobs run close to their limits,
    nodes go down or drain under running jobs; half an hour of its time has both, each once."""
    from slurm_monitor.mock import MockCluster

    now = [float(T0)]
    cluster = MockCluster(seed=2, clock=lambda: now[0])
    sink = RecordingSink()
    monitor = Monitor(SlurmCollector(runner=cluster.run), sink, persist=False, clock=lambda: now[0],
                      reminders=Reminders(0.8))
    for poll in range(360):  # 30 minutes: jobs every 5 s, nodes every 10 s
        await monitor.poll_jobs()
        if poll % 2 == 0:
            await monitor.poll_nodes()
        now[0] += 5
    limits = [n.data["job_id"] for n in sink.notes if n.type == "job_time_limit"]
    downs = [n for n in sink.notes if n.type == "job_node_down"]
    assert limits and downs
    assert len(limits) == len(set(limits))
    assert all(n.user and n.data["jobs"] for n in downs)


# --- settings and rules ---------------------------------------------------------------------


@pytest.mark.parametrize("raw, fraction", [(None, 0.8), ("0.9", 0.9), ("0", 0.0), (" ", 0.8)])
def test_the_fraction_setting(raw, fraction):
    from slurm_monitor.conf import load_config

    env = {} if raw is None else {"SLURM_MONITOR_TIME_LIMIT_WARN_FRACTION": raw}
    assert load_config(env).time_limit_warn_fraction == fraction


@pytest.mark.parametrize("raw", ["1", "1.5", "-0.1", "most"])
def test_a_bad_fraction_names_the_variable(raw):
    from slurm_monitor.conf import ConfigError, load_config

    with pytest.raises(ConfigError, match="SLURM_MONITOR_TIME_LIMIT_WARN_FRACTION"):
        load_config({"SLURM_MONITOR_TIME_LIMIT_WARN_FRACTION": raw})


def test_the_rules_know_both_reminders_page_and_browser_by_default():
    from hub.notify.notification_rules import KINDS, default_channels, kind_for

    assert kind_for("job_time_limit", False) == "job_time_limit"
    assert kind_for("job_node_down", False) == "job_node_down"
    assert kind_for("job_node_down", True) == "maintenance"  # a node kind for one user is not cluster-wide
    assert {"job_time_limit", "job_node_down"} <= set(KINDS)
    defaults = default_channels(has_email=True)
    assert defaults["job_time_limit"] == defaults["job_node_down"] == ["page", "browser"]
