"""hub.engine.coalesce: calls made together go out as one send (with Redis: one script round
trip), in order; at most ``max_in_flight`` sends at once, the rest gathered meanwhile."""

from __future__ import annotations

import asyncio

import pytest

from hub.engine.coalesce import Coalescer


class Sender:
    """A send that records its lists and answers when released (or at once)."""

    def __init__(self, hold: bool = False) -> None:
        self.sent: list[list[int]] = []
        self.hold = hold
        self.release = asyncio.Event()
        self.fail: Exception | None = None

    async def __call__(self, items: list[int]) -> list[int]:
        self.sent.append(list(items))
        if self.hold:
            await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return [item * 10 for item in items]


async def until(condition) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("never happened")


async def test_calls_of_one_turn_share_one_send_in_order():
    sender = Sender()
    coalescer = Coalescer(sender)
    results = await asyncio.gather(coalescer.submit([1]), coalescer.submit([2, 3]), coalescer.submit([4]))
    assert results == [[10], [20, 30], [40]]
    assert sender.sent == [[1, 2, 3, 4]] and coalescer.sends == 1


async def test_while_sends_are_in_flight_later_calls_gather_into_one():
    sender = Sender(hold=True)
    coalescer = Coalescer(sender, max_in_flight=2)
    first = asyncio.ensure_future(coalescer.submit([1]))
    await until(lambda: len(sender.sent) == 1)
    second = asyncio.ensure_future(coalescer.submit([2]))
    await until(lambda: len(sender.sent) == 2)
    later = [asyncio.ensure_future(coalescer.submit([n])) for n in (3, 4, 5)]
    for _ in range(20):
        await asyncio.sleep(0)
    assert sender.sent == [[1], [2]]  # two in flight: the rest wait
    sender.release.set()
    assert await asyncio.gather(first, second, *later) == [[10], [20], [30], [40], [50]]
    assert sender.sent == [[1], [2], [3, 4, 5]]


async def test_a_send_is_capped_at_max_items():
    sender = Sender()
    coalescer = Coalescer(sender, max_items=3)
    results = await asyncio.gather(*(coalescer.submit([n, n]) for n in range(4)))
    assert results == [[n * 10, n * 10] for n in range(4)]
    assert all(len(sent) <= 3 for sent in sender.sent) and sum(map(len, sender.sent)) == 8


async def test_a_failed_send_fails_its_callers_only():
    sender = Sender()
    coalescer = Coalescer(sender)
    sender.fail = ConnectionError("down")
    with pytest.raises(ConnectionError):
        await asyncio.gather(coalescer.submit([1]), coalescer.submit([2]))
    sender.fail = None
    assert await coalescer.submit([3]) == [30]


async def test_a_caller_that_gave_up_before_the_send_sends_nothing():
    sender = Sender()
    coalescer = Coalescer(sender)
    gone = asyncio.ensure_future(coalescer.submit([1]))
    kept = asyncio.ensure_future(coalescer.submit([2]))
    await asyncio.sleep(0)  # both queued, the flush not run yet
    gone.cancel()
    assert await kept == [20]
    assert sender.sent == [[2]]
