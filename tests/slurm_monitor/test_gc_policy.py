"""The long-running monitor's garbage-collection policy (slurm_monitor.gc_policy)."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from slurm_monitor.gc_policy import GcPolicy


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def unfrozen():
    """Freezing is process-wide: leave the test process as it was found."""
    yield
    gc.unfreeze()


def garbage_cycle() -> weakref.ref:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_what_a_poll_leaves_is_frozen_until_the_next_full_collection():
    policy = GcPolicy(full_every=3)
    ref = garbage_cycle()  # unreachable, but alive until the cyclic collector finds it
    policy.after_poll()
    assert gc.get_freeze_count() > 0
    gc.collect()  # an automatic or explicit collection no longer walks it
    assert ref() is not None
    policy.after_poll()
    gc.collect()
    assert ref() is not None
    policy.after_poll()  # the third poll: unfrozen, one full collection, frozen again
    assert ref() is None
    assert policy.last_full_seconds > 0
    assert gc.get_freeze_count() > 0


@pytest.mark.django_db(transaction=True)
def test_the_long_running_monitor_gets_the_policy(monkeypatch):
    """``service.serve`` sets it on the long-running monitor (not on ``--once``), and
    the test below shows a jobs poll applying it."""
    from slurm_monitor import service
    from slurm_monitor.conf import load_config
    from slurm_monitor.monitor import Monitor

    seen: dict[str, object] = {}

    async def run(self, stop):
        seen["policy"] = self.gc_policy

    monkeypatch.setattr(Monitor, "run", run)
    monkeypatch.setattr(service, "install_stop_signals", lambda stop: None)
    options = service.RunOptions(config=load_config(), once=False, mock=True, fallback_mock=False,
                                 seed=1, cluster=None, slurm_conf=None)
    asyncio.run(service.serve(options))
    assert isinstance(seen["policy"], GcPolicy)


async def test_a_jobs_poll_applies_the_policy_once_after_its_events_are_out():
    from tests.slurm_monitor.test_monitor import PENDING, make_monitor, squeue

    monitor, sink, _ = make_monitor([squeue("23.11", []), squeue("23.11", PENDING)])
    calls: list[int] = []

    class Recording(GcPolicy):
        def after_poll(self) -> None:
            calls.append(len(sink.events("jobs")))

    monitor.gc_policy = Recording()
    await monitor.poll_jobs()
    await monitor.poll_jobs()
    assert calls == [0, 1]  # once per poll, the second after its job_submitted went out
