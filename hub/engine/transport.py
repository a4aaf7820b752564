"""Socket writers: how a finished frame text reaches one client socket.

``make_writer`` picks the fastest writer the ASGI server allows. Under daphne (fast path on)
that is ``hub.daphne.writer.DaphneWriter``: a publication framed once per process and written
straight to each socket, slow consumers found from Twisted's queued bytes. Every other case
gets ``AsgiWriter``: stock ASGI ``send({"type": "websocket.send", ...})`` through a bounded
per-socket queue drained by one task, with the same byte limit. That is the path under uvicorn,
and under daphne when ``HUB_DAPHNE_FAST_PATH=off`` or when the seam's start-up checks find an
internal missing (``hub.daphne.checks``). Both writers are synchronous to call: the fan-out
loop never awaits per subscriber. Nothing here imports daphne, autobahn or Twisted.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Callable

from hub.daphne.writer import DaphneWriter, stock_send, writer_for

__all__ = ["AsgiWriter", "DaphneWriter", "OnOverflow", "Payload", "PayloadBatch", "make_writer"]


class Payload:
    """One publication's text, encoded at most once per process. ``_prepared``, ``_factory``
    and ``frame`` are the daphne seam's cache of its framed bytes (``hub.daphne.writer``)."""

    __slots__ = ("text", "_bytes", "_prepared", "_factory", "frame")
    count = 1  # messages it carries

    def __init__(self, text: str) -> None:
        self.text = text
        self._bytes: bytes | None = None
        self._prepared: Any = None
        self._factory: Any = None
        self.frame: bytes | None = None

    @property
    def size(self) -> int:
        return len(self.encoded)

    @property
    def encoded(self) -> bytes:
        if self._bytes is None:
            self._bytes = self.text.encode("utf-8")
        return self._bytes

    def parts(self) -> tuple["Payload", ...]:
        return (self,)


class PayloadBatch(Payload):
    """Several publications for the same sockets, each still its own WebSocket message.

    Written when a fan-out is behind (``hub.engine``): the frames go out back to back in one
    ``send`` per socket instead of one each, so a process that cannot keep up pays one
    syscall per socket per catch-up instead of one per publication, and the backlog shrinks
    instead of growing. What a client receives is byte for byte the same frames."""

    __slots__ = ("items", "count")

    def __init__(self, items: list[Payload]) -> None:
        self.items = items
        self.count = len(items)
        self.text = ""
        self._bytes = None
        self._prepared = None
        self._factory = None
        self.frame = None

    @property
    def size(self) -> int:
        return sum(item.size for item in self.items)

    def parts(self) -> tuple[Payload, ...]:
        return tuple(self.items)


OnOverflow = Callable[[], None]


class AsgiWriter:
    """Generic ASGI: a bounded per-socket queue drained by one task (uvicorn and others)."""

    def __init__(self, send: Callable, max_queued_bytes: int, on_overflow: OnOverflow) -> None:
        self._send = send
        self._queue: deque[tuple[str, int]] = deque()  # (text, its UTF-8 size)
        self._queued = 0
        self._max = max_queued_bytes
        self._on_overflow = on_overflow
        self._task: asyncio.Task | None = None
        self._closed = False

    def queued_bytes(self) -> int:
        return self._queued

    def write_payload(self, payload: Payload) -> bool:
        ok = True
        for part in payload.parts():
            ok = self._enqueue(part.text, part.size) and ok
        return ok

    def write_text(self, text: str) -> bool:
        return self._enqueue(text, len(text.encode("utf-8")))

    def _enqueue(self, text: str, size: int) -> bool:
        if self._closed:
            return False
        self._queue.append((text, size))
        self._queued += size
        if self._queued > self._max:
            self._on_overflow()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return True

    async def _drain(self) -> None:
        try:
            while self._queue and not self._closed:
                text, size = self._queue.popleft()
                self._queued -= size
                await self._send({"type": "websocket.send", "text": text})
        except Exception:
            self._closed = True  # the socket is gone; the consumer sees the disconnect
        finally:
            self._task = None

    def on_transport_pong(self, callback: Callable[[], None]) -> None:
        return None

    def close(self, code: int, reason: str = "") -> None:
        self._closed = True
        self._queue.clear()
        asyncio.get_running_loop().create_task(
            self._send({"type": "websocket.close", "code": code, "reason": reason}))

    def stop(self) -> None:
        self._closed = True
        self._queue.clear()
        self._queued = 0


def make_writer(send: Callable, max_queued_bytes: int, on_overflow: OnOverflow):
    """The fastest writer this ASGI server allows (see the module docstring)."""
    writer = writer_for(send, max_queued_bytes, on_overflow)
    if writer is not None:
        return writer
    return AsgiWriter(stock_send(send), max_queued_bytes, on_overflow)
