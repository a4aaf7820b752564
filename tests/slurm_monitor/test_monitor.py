"""monitor: collect -> diff -> publish; bad polls send nothing; the loop never dies."""

from __future__ import annotations

import asyncio
import json

import pytest

from slurm_monitor.collector import CollectError, CommandResult, SlurmCollector
from slurm_monitor.events import Notification
from slurm_monitor.monitor import Intervals, Monitor
from slurm_monitor.sinks import Sink, SinkError
from tests.slurm_monitor import shapes


class RecordingSink(Sink):
    name = "recording"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []  # (target, event, key)
        self.notes: list[Notification] = []
        self.fail_with: Exception | None = None

    def _check(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with

    async def publish(self, channel, event, data):
        self._check()
        self.sent.append((channel, event, str(data.get("job_id") or data.get("node") or "")))
        return len(self.sent)

    async def send_to_user(self, username, event, data):
        self._check()
        self.sent.append((f"user:{username}", event, str(data.get("job_id") or "")))
        return len(self.sent)

    async def notify(self, notification):
        self._check()
        self.notes.append(notification)

    def events(self, target: str | None = None) -> list[tuple[str, str, str]]:
        return [s for s in self.sent if target is None or s[0] == target]


def squeue(release: str, jobs) -> tuple[int, str, str]:
    return 0, json.dumps(shapes.squeue_doc(release, jobs)), ""


class ScriptedSlurm:
    """Answers squeue from a script (the last answer repeats); nodes always fine."""

    def __init__(self, release: str, script: list) -> None:
        self.release = release
        self.script = list(script)
        self.calls: list[str] = []

    async def __call__(self, argv, timeout):
        name = argv[0]
        self.calls.append(name if argv[1:] != ["--version"] else "version")
        if argv[1:] == ["--version"]:
            return CommandResult(tuple(argv), 0, f"slurm {self.release}.0", "", 0.0)
        if name == "squeue":
            answer = self.script.pop(0) if len(self.script) > 1 else self.script[0]
            if isinstance(answer, Exception):
                raise answer
            if answer == "hang":
                await asyncio.sleep(3600)
            return CommandResult(tuple(argv), *answer, 0.0)
        return CommandResult(tuple(argv), 0, json.dumps(shapes.nodes_doc(self.release)), "", 0.0)


PENDING = shapes.with_changes(shapes.JOBS[:1], "id", 101)
RUNNING = shapes.with_changes(shapes.JOBS[:1], "id", 101, state="RUNNING", nodes="gpu01", start=1700000100)
FAILED = shapes.with_changes(shapes.JOBS[:1], "id", 101, state="FAILED", nodes="gpu01",
                             start=1700000100, end=1700000200, raw_exit=3 << 8)


def make_monitor(script, release="23.11"):
    runner = ScriptedSlurm(release, script)
    sink = RecordingSink()
    monitor = Monitor(SlurmCollector(runner=runner, timeout=5), sink, persist=False)
    return monitor, sink, runner


@pytest.mark.parametrize("release", ["22.05", "23.02", "25.11"])
async def test_events_flow_once_per_change(release):
    monitor, sink, _ = make_monitor([squeue(release, []), squeue(release, PENDING),
                                     squeue(release, RUNNING), squeue(release, RUNNING),
                                     squeue(release, FAILED), squeue(release, [])], release)
    for _ in range(6):
        await monitor.poll_jobs()
    assert sink.events("jobs") == [("jobs", "job_submitted", "101"), ("jobs", "job_state_changed", "101"),
                                   ("jobs", "job_state_changed", "101"), ("jobs", "job_removed", "101")]
    assert sink.events("user:alice") == [("user:alice", e, k) for _, e, k in sink.events("jobs")]
    assert [(n.type, n.user, n.data["exit_code"]) for n in sink.notes] == [("job_failed", "alice", 3)]


BROKEN_POLLS = [
    ("controller unreachable", (0, json.dumps(
        {"jobs": [], "errors": [{"description": "Failed while looking for jobs"}]}), "")),
    ("exit code", (1, "", "squeue: error: slurm_receive_msg: Socket timed out")),
    ("timeout", CollectError("squeue --all --json timed out after 5s")),
    ("garbage", (0, "<html>", "")),
    ("empty", (0, "", "")),
]


@pytest.mark.parametrize("name, broken", BROKEN_POLLS, ids=[b[0] for b in BROKEN_POLLS])
async def test_a_broken_poll_sends_nothing_and_is_not_all_jobs_ended(name, broken):
    monitor, sink, _ = make_monitor([squeue("23.11", RUNNING), squeue("23.11", RUNNING), broken,
                                     broken, squeue("23.11", FAILED)])
    await monitor.poll_jobs()  # baseline
    await monitor.poll_jobs()
    assert sink.sent == [] and sink.notes == []
    assert await monitor.poll_jobs() == 0
    assert await monitor.poll_jobs() == 0
    assert sink.sent == [] and sink.notes == [] and monitor.stats["jobs_failed"] == 2
    assert monitor.jobs is not None and "101" in monitor.jobs  # last good snapshot kept
    await monitor.poll_jobs()  # diffed against the last good poll: one change, once
    assert sink.events("jobs") == [("jobs", "job_state_changed", "101")]
    assert [n.type for n in sink.notes] == ["job_failed"]


async def test_delivery_failures_are_counted_not_raised():
    monitor, sink, _ = make_monitor([squeue("23.11", []), squeue("23.11", FAILED)])
    await monitor.poll_jobs()
    sink.fail_with = SinkError("hub answered 503")
    assert await monitor.poll_jobs() == 0
    assert monitor.stats["delivery_failures"] == 2  # the event and the notification


async def test_the_loop_survives_crashes_and_stops_promptly(caplog):
    # Not CollectError: a bug. Three polls crash, then Slurm answers again.
    script = [RuntimeError("bug")] * 3 + [squeue("23.11", []), squeue("23.11", PENDING)]
    monitor, sink, _ = make_monitor(script)
    monitor.intervals = Intervals(jobs=0.05, nodes=0.05, metrics=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(stop))
    while not sink.events("jobs"):
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert sink.events("jobs")[0] == ("jobs", "job_submitted", "101")
    assert caplog.text.count("jobs poll crashed; the monitor goes on") == 3


async def test_an_unexpected_delivery_error_does_not_stop_the_others():
    monitor, sink, _ = make_monitor([squeue("23.11", []), squeue("23.11", shapes.JOBS)])
    await monitor.poll_jobs()
    calls = {"n": 0}
    original = sink.publish

    async def flaky(channel, event, data):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("unexpected")
        return await original(channel, event, data)

    sink.publish = flaky
    # 7 submitted + 5 notifications (23.11's [COMPLETED, COMPLETING] job 106 has ended), one lost
    assert await monitor.poll_jobs() == 7 + 5 - 1


async def test_stop_kills_a_hanging_command():
    monitor, _, runner = make_monitor(["hang"])
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(stop))
    while "squeue" not in runner.calls:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_metrics_and_alerts():
    monitor, sink, _ = make_monitor([squeue("23.11", shapes.JOBS)])
    assert await monitor.publish_metrics() == 0  # no node snapshot yet
    await monitor.poll_jobs()
    await monitor.poll_nodes()  # baseline nodes; cn03 is down: the alert is raised once
    await monitor.poll_nodes()
    assert sink.events("alerts") == [("alerts", "alert", "")]
    assert await monitor.publish_metrics() == 1
    assert sink.events("metrics") == [("metrics", "metrics_update", "")]


async def test_commands_per_poll_are_fixed():
    """One poll serves every viewer: each stream runs one command per poll, whatever happens."""
    monitor, _, runner = make_monitor([squeue("23.11", shapes.JOBS)])
    for _ in range(10):
        await monitor.poll_jobs()
        await monitor.poll_nodes()
        await monitor.publish_metrics()
    assert runner.calls.count("squeue") == 10
    assert runner.calls.count("scontrol") == 10
    assert runner.calls.count("version") == 1
    assert monitor.collector.commands_run == {"squeue": 10, "scontrol": 11}
