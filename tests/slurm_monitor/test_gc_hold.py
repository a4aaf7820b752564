"""The jobs poll holds the cyclic garbage collector off from its listing until its events are
out (slurm_monitor.gc_hold), so no full collection of the whole snapshot can land on a
change's way to the subscribers; it is back on for the save and after the poll, and a
process that turned it off keeps it off."""

from __future__ import annotations

import gc

import pytest

from slurm_monitor.collector import CommandResult, SlurmCollector
from slurm_monitor.gc_hold import GcHold
from slurm_monitor.mock_scale import ScaleCluster
from slurm_monitor.monitor import Monitor
from tests.slurm_monitor.test_monitor import RecordingSink


@pytest.fixture(autouse=True)
def collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    (gc.enable if was else gc.disable)()


class Watching(RecordingSink):
    def __init__(self) -> None:
        super().__init__()
        self.gc_during_delivery: list[bool] = []

    async def publish_many(self, items):
        self.gc_during_delivery.append(gc.isenabled())
        return await super().publish_many(items)


def watched_monitor(fail_listing: dict[str, bool] | None = None):
    cluster = ScaleCluster(10, 300, seed=4, churn=0.05)
    commands: list[tuple[str, bool]] = []

    async def runner(argv, timeout):
        kind = "listing" if "--only-job-state" in argv else "detail" if any(
            a.startswith("--jobs=") for a in argv) else argv[0]
        commands.append((kind, gc.isenabled()))
        if fail_listing and fail_listing.get("on") and kind == "listing":
            return CommandResult(tuple(argv), 1, "", "slurm_load_jobs error: timeout", 0.0)
        return await cluster.run(argv, timeout)

    sink = Watching()
    monitor = Monitor(SlurmCollector(runner=runner, state_tier=True), sink, persist=False, full_every=50)
    return monitor, sink, commands


async def test_held_from_the_listing_until_the_events_are_out():
    monitor, sink, commands = watched_monitor()
    await monitor.poll_jobs()  # the baseline
    saves: list[bool] = []

    async def save(*args, **kwargs):
        saves.append(gc.isenabled())

    monitor._save = save
    sink.gc_during_delivery.clear()
    commands.clear()
    for _ in range(3):
        assert await monitor.poll_jobs() > 0
        assert gc.isenabled()  # back on after the poll
    assert monitor.stats["jobs_polls_state+detail"] == 3
    assert sink.gc_during_delivery == [False, False, False]  # off while the events go out
    assert saves == [True, True, True]  # on again for the save
    assert ("listing", True) in commands  # not held while the listing is awaited
    assert {on for kind, on in commands if kind == "detail"} == {False}  # held from the listing on


async def test_a_failed_listing_leaves_it_on():
    fail = {"on": False}
    monitor, _sink, _commands = watched_monitor(fail)
    await monitor.poll_jobs()
    fail["on"] = True
    assert await monitor.poll_jobs() == 0
    assert monitor.stats["jobs_failed"] == 1 and gc.isenabled()


async def test_a_process_that_turned_it_off_keeps_it_off():
    monitor, sink, _commands = watched_monitor()
    gc.disable()
    await monitor.poll_jobs()
    await monitor.poll_jobs()
    assert not gc.isenabled() and sink.gc_during_delivery == [False]


def test_hold_and_release_are_idempotent_and_never_enable_what_they_did_not_disable():
    with GcHold() as hold:
        hold.hold()
        hold.hold()
        assert not gc.isenabled()
        hold.release()
        assert gc.isenabled()
        hold.release()
        assert gc.isenabled()
    gc.disable()
    with GcHold() as hold:
        hold.hold()
        hold.release()
    assert not gc.isenabled()
    with pytest.raises(RuntimeError):
        with GcHold() as hold:
            gc.enable()
            hold.hold()
            raise RuntimeError("a bug mid-poll")
    assert gc.isenabled()  # released on the way out
