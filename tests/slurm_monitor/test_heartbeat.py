"""Stream heartbeats: every poll writes one (ok or not, with the stream's interval), even when
nothing changed; ``metrics_update`` carries each stream's last successful poll."""

from __future__ import annotations

import pytest

from slurm_monitor import heartbeats, store_read
from slurm_monitor.collector import SlurmCollector
from slurm_monitor.metrics import stream_age
from slurm_monitor.monitor import Intervals, Monitor
from tests.slurm_monitor import shapes
from tests.slurm_monitor.test_monitor import RecordingSink, ScriptedSlurm, squeue

pytestmark = pytest.mark.django_db(transaction=True)


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_monitor(script, clock):
    sink = RecordingSink()
    monitor = Monitor(SlurmCollector(runner=ScriptedSlurm("23.11", script), timeout=5), sink,
                      intervals=Intervals(jobs=2, nodes=4, metrics=6), source="test", clock=clock)
    return monitor, sink


def beats() -> dict[str, heartbeats.StreamBeat]:
    return {b.stream: b for b in heartbeats.load_heartbeats()}


async def test_every_poll_beats_even_when_nothing_changed():
    from asgiref.sync import sync_to_async

    monitor, sink = make_monitor([squeue("23.11", shapes.JOBS)], Clock())
    assert await sync_to_async(heartbeats.load_heartbeats)() == []
    await monitor.poll_jobs()
    first = (await sync_to_async(beats)())["jobs"]
    events = len(sink.sent)
    await monitor.poll_jobs()  # the same jobs: no event, still a heartbeat
    second = (await sync_to_async(beats)())["jobs"]
    assert len(sink.sent) == events
    assert second.last_poll_at > first.last_poll_at and second.last_ok_at > first.last_ok_at
    assert (second.interval, second.ok, second.failures) == (2.0, True, 0)


async def test_a_failed_poll_beats_as_failed_and_keeps_the_last_success():
    from asgiref.sync import sync_to_async

    monitor, _ = make_monitor([squeue("23.11", []), (1, "", "squeue: error: timed out")], Clock())
    await monitor.poll_jobs()
    good = (await sync_to_async(beats)())["jobs"]
    await monitor.poll_jobs()
    await monitor.poll_jobs()
    bad = (await sync_to_async(beats)())["jobs"]
    assert (bad.ok, bad.failures) == (False, 2)
    assert bad.last_ok_at == good.last_ok_at and bad.last_poll_at > good.last_poll_at


async def test_metrics_beat_and_carry_every_streams_last_success():
    from asgiref.sync import sync_to_async

    clock = Clock()
    monitor, sink = make_monitor([squeue("23.11", shapes.JOBS)], clock)
    assert await monitor.publish_metrics() == 0  # no node snapshot: a failed beat
    assert (await sync_to_async(beats)())["metrics"].ok is False
    await monitor.poll_jobs()
    clock.now += 1
    await monitor.poll_nodes()
    clock.now += 1
    published = []
    original = sink.publish

    async def keep(channel, event, data):
        published.append(data)
        return await original(channel, event, data)

    sink.publish = keep
    assert await monitor.publish_metrics() == 1
    streams = published[-1]["streams"]
    assert streams == {"jobs": {"interval": 2, "updated_at": "2023-11-14T22:13:20.000Z"},
                       "nodes": {"interval": 4, "updated_at": "2023-11-14T22:13:21.000Z"},
                       "metrics": {"interval": 6, "updated_at": "2023-11-14T22:13:22.000Z"}}
    assert (await sync_to_async(store_read.get_metrics)())["metrics"]["streams"] == streams  # REST too
    assert {b.stream: b.ok for b in await sync_to_async(heartbeats.load_heartbeats)()} == \
        {"jobs": True, "nodes": True, "metrics": True}


def test_stream_age_is_late_after_three_intervals():
    assert not stream_age("jobs", 5, True, 100.0, 50.0, 115.0).late
    late = stream_age("jobs", 5, True, 100.0, 50.0, 115.1)
    assert late.late and late.age_seconds == pytest.approx(15.1)
    never = stream_age("nodes", 10, False, None, 50.0, 90.0)  # never succeeded: since the first poll
    assert never.late and never.age_seconds == 40.0
