"""Coalescing: calls that arrive together go out as one.

``Coalescer(send)``: ``await coalescer.submit(items)`` queues ``items`` (a list) and returns
their results once a ``send(all items queued meanwhile, in order)`` has answered. The first
submit of an event-loop turn schedules a flush (``call_soon``), so every caller that runs in
the same turn (a burst of concurrent REST requests, each publishing) shares one call: with
Redis one script round trip instead of one per request. At most ``max_in_flight`` sends run
at once; while they do, new submissions wait in the queue and go out together when one
answers, so under load the calls grow instead of queueing up one per turn (adaptive
batching). A caller alone pays one loop turn and a future.

``send`` must return one result per item, in order; its exception goes to every caller of
that send. One send keeps its callers' items in submit order; two sends in flight at once
are not ordered with each other (as two independent calls never were).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    def __init__(self, send: Callable[[list[T]], Awaitable[list[R]]], max_items: int = 1000,
                 max_in_flight: int = 2) -> None:
        self._send = send
        self._max_items = max_items  # per send (a submit larger than this goes alone)
        self._max_in_flight = max_in_flight
        self._queue: deque[tuple[list[T], asyncio.Future[list[R]]]] = deque()
        self._in_flight = 0
        self._scheduled = False
        self.sends = 0  # figures for tests and benchmarks
        self.items = 0

    async def submit(self, items: list[T]) -> list[R]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[R]] = loop.create_future()
        self._queue.append((items, future))
        self._schedule(loop)
        return await future

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._scheduled and self._queue and self._in_flight < self._max_in_flight:
            self._scheduled = True
            loop.call_soon(self._flush, loop)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled = False
        queue = self._queue
        while queue and queue[0][1].done():
            queue.popleft()  # every caller of it gave up (a deadline): nothing to send for it
        if not queue:
            return
        chunk = [queue.popleft()]
        size = len(chunk[0][0])
        while queue and size + len(queue[0][0]) <= self._max_items:
            chunk.append(queue.popleft())
            size += len(chunk[-1][0])
        self._in_flight += 1
        loop.create_task(self._run(loop, chunk))
        self._schedule(loop)  # more queued and room for another send

    async def _run(self, loop: asyncio.AbstractEventLoop,
                   chunk: list[tuple[list[T], asyncio.Future[list[R]]]]) -> None:
        try:
            await self._send_chunk(chunk)
        finally:
            self._in_flight -= 1
            self._schedule(loop)

    async def _send_chunk(self, chunk: list[tuple[list[T], asyncio.Future[list[R]]]]) -> None:
        waiting = [(items, future) for items, future in chunk if not future.done()]
        if not waiting:
            return
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
