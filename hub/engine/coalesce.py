"""Coalescing: the calls made during one event-loop turn go out as one.

``Coalescer(send)``: ``await coalescer.submit(items)`` queues ``items`` (a list) and returns
their results once a single ``send(all items queued in this turn, in order)`` has answered.
The first submit of a turn schedules the flush with ``call_soon``, so every caller that runs
in the same turn (a burst of concurrent REST requests, each publishing) shares one call: with
Redis one script round trip instead of one per request. A caller alone pays one loop turn and
a future. ``send`` must return one result per item, in order; its exception goes to every
caller of that flush. Flushes of one coalescer run one after the other, in submit order, so
a caller's items never overtake the items submitted before them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    def __init__(self, send: Callable[[list[T]], Awaitable[list[R]]], max_items: int = 1000) -> None:
        self._send = send
        self._max_items = max_items  # per send; a larger turn is sent in several, in order
        self._queue: list[tuple[list[T], asyncio.Future[list[R]]]] = []
        self._lock = asyncio.Lock()
        self.sends = 0  # figures for tests and benchmarks
        self.items = 0

    async def submit(self, items: list[T]) -> list[R]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[R]] = loop.create_future()
        if not self._queue:
            loop.call_soon(self._flush, loop)
        self._queue.append((items, future))
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._queue = self._queue, []
        loop.create_task(self._run(batch))

    async def _run(self, batch: list[tuple[list[T], asyncio.Future[list[R]]]]) -> None:
        async with self._lock:  # a slow flush delays the next one instead of racing it
            while batch:
                chunk: list[tuple[list[T], asyncio.Future[list[R]]]] = []
                size = 0
                while batch and (not chunk or size + len(batch[0][0]) <= self._max_items):
                    chunk.append(batch.pop(0))
                    size += len(chunk[-1][0])
                await self._send_chunk(chunk)

    async def _send_chunk(self, chunk: list[tuple[list[T], asyncio.Future[list[R]]]]) -> None:
        waiting = [(items, future) for items, future in chunk if not future.done()]
        if not waiting:
            return  # every caller gave up before the send: nothing to publish for them
        flat = [item for items, _future in waiting for item in items]
        self.sends += 1
        self.items += len(flat)
        try:
            results = await self._send(flat)
        except BaseException as exc:  # noqa: BLE001  (the callers' to handle; cancel included)
            for _items, future in waiting:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else
                                         asyncio.CancelledError())
            if not isinstance(exc, Exception):
                raise
            return
        start = 0
        for items, future in waiting:
            if not future.done():
                future.set_result(results[start:start + len(items)])
            start += len(items)
