"""Socket writers: how a finished frame text reaches one client socket.

Why not just ``await send({"type": "websocket.send", ...})`` per subscriber? Under daphne,
that call encodes the text to UTF-8 and frames it once per subscriber, and nothing tells the
application how much is queued for a slow reader (Twisted buffers without bound). So, when
the ASGI server is daphne, ``DaphneWriter`` frames a publication once per process with
autobahn's ``prepareMessage`` (its broadcast primitive), writes the same bytes to every
subscriber, and reads the transport's queued bytes to find slow consumers. Any other ASGI
server gets ``AsgiWriter``: a per-socket queue drained by one task, with the same byte limit.
Both are synchronous to call: the fan-out loop never awaits per subscriber.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from typing import Any, Callable


class Payload:
    """One publication's text, encoded and framed at most once per process."""

    __slots__ = ("text", "_bytes", "_prepared", "_factory", "frame")
    count = 1  # messages it carries

    def __init__(self, text: str) -> None:
        self.text = text
        self._bytes: bytes | None = None
        self._prepared: Any = None
        self._factory: Any = None
        self.frame: bytes | None = None  # the prepared frame's bytes, for ``_factory``

    @property
    def size(self) -> int:
        return len(self.encoded)

    @property
    def encoded(self) -> bytes:
        if self._bytes is None:
            self._bytes = self.text.encode("utf-8")
        return self._bytes

    def prepared_for(self, factory: Any) -> Any:
        if self._prepared is None or self._factory is not factory:
            self._prepared = factory.prepareMessage(self.encoded, False)
            self._factory = factory
            self.frame = self._prepared.payloadHybi
        return self._prepared

    def parts(self) -> tuple["Payload", ...]:
        return (self,)

    def send_prepared(self, protocol: Any) -> None:
        """The slow path: through autobahn, which keeps its own send queue in order."""
        protocol.sendPreparedMessage(self._prepared)


class PayloadBatch(Payload):
    """Several publications for the same sockets, each still its own WebSocket message.

    Written when a fan-out is behind (``hub.engine.node``): the frames go out back to back
    in one ``send`` per socket instead of one each, so a process that cannot keep up pays
    one syscall per socket per catch-up instead of one per publication, and the backlog
    shrinks instead of growing. What a client receives is byte for byte the same frames."""

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

    def prepared_for(self, factory: Any) -> Any:
        if self._factory is not factory:
            for item in self.items:
                if item._factory is not factory:
                    item.prepared_for(factory)
            self.frame = b"".join([item.frame for item in self.items])
            self._factory = factory
        return None

    def parts(self) -> tuple[Payload, ...]:
        return tuple(self.items)

    def send_prepared(self, protocol: Any) -> None:
        for item in self.items:
            protocol.sendPreparedMessage(item._prepared)


OnOverflow = Callable[[], None]


class DaphneWriter:
    """Writes straight to daphne's autobahn protocol (same event loop: asyncio reactor)."""

    __slots__ = ("_protocol", "_server", "_factory", "_open_state", "_max", "_on_overflow",
                 "_sock_send", "_transport")

    def __init__(self, protocol: Any, server: Any, max_queued_bytes: int,
                 on_overflow: OnOverflow) -> None:
        self._protocol = protocol
        self._server = server
        self._factory = protocol.factory
        self._open_state = protocol.STATE_OPEN
        self._max = max_queued_bytes
        self._on_overflow = on_overflow
        # ``socket.send`` of a plain TCP transport once the socket is open (None: not decided
        # yet; False: always the normal path, e.g. TLS or compression).
        self._sock_send: Any = None
        self._transport: Any = None
        # autobahn drops the TCP connection on an oversized or invalid frame by default;
        # PROTOCOL.md promises a close code (1009 too large, 1007 invalid UTF-8).
        protocol.failByDrop = False

    def _is_open(self) -> bool:
        return self._protocol.state == self._open_state

    def queued_bytes(self) -> int:
        transport = self._protocol.transport
        if transport is None:
            return 0
        return (len(getattr(transport, "dataBuffer", b"")) - getattr(transport, "offset", 0)
                + getattr(transport, "_tempDataLen", 0))

    def write_payload(self, payload: Payload) -> bool:
        """The prepared frame goes out with one ``send`` when nothing is queued for this
        socket. Measured (docs/benchmarks.md): Twisted's deferred write (register for
        writability, a reactor turn, ``send``, unregister) plus autobahn's ``sendData``
        (which formats debug-log arguments even with debug off) cost ~75 us per delivery;
        the direct send ~13 us. Anything not sent at once is handed to Twisted, which keeps
        the order and the slow-consumer accounting.

        Per delivery this runs once per subscriber, so the checks are plain attribute reads
        on the Twisted TCP transport found when the socket opened (``_direct``): the socket
        is open, autobahn's send queue is empty, Twisted holds no bytes for it and is not
        closing it."""
        protocol = self._protocol
        if protocol.state != self._open_state:
            return False
        if payload._factory is not self._factory:
            payload.prepared_for(self._factory)
        send = self._sock_send
        if send is None:
            send = self._direct(protocol)
        t = self._transport
        if (send and not t._tempDataLen and len(t.dataBuffer) == t.offset
                and not protocol.send_queue and t.connected and not t.disconnecting
                and not t._writeDisconnected):
            frame = payload.frame
            try:
                sent = send(frame)
            except BlockingIOError:
                sent = 0
            except OSError:
                payload.send_prepared(protocol)
                return True
            if sent == len(frame):
                return True  # nothing queued before, nothing queued now
            t.write(frame[sent:])
        else:
            payload.send_prepared(protocol)
        if self.queued_bytes() > self._max:
            self._on_overflow()
        return True

    def _direct(self, protocol: Any) -> Any:
        """Decided once the socket is open: plain TCP (Twisted ``tcp.Connection``), no
        per-message compression -> its socket's ``send``; otherwise False."""
        transport = protocol.transport
        ok = (transport is not None and protocol._perMessageCompress is None
              and not getattr(transport, "TLS", True) and hasattr(transport, "socket")
              and all(hasattr(transport, a) for a in ("dataBuffer", "offset", "_tempDataLen",
                                                       "connected", "disconnecting",
                                                       "_writeDisconnected")))
        self._transport = transport
        self._sock_send = transport.socket.send if ok else False
        return self._sock_send

    def write_text(self, text: str) -> bool:
        if not self._is_open():
            return False
        self._protocol.sendMessage(text.encode("utf-8"), False)
        if self.queued_bytes() > self._max:
            self._on_overflow()
        return True

    def close(self, code: int, reason: str = "") -> None:
        """autobahn's public ``sendClose`` refuses 1001, 1009 and 1013 from an application
        (it allows 1000 and 3000-4999), but PROTOCOL.md uses them; ``sendCloseFrame`` is
        the same close handshake without that check."""
        if self._is_open():
            self._protocol.sendCloseFrame(code=code, reasonUtf8=reason.encode("utf-8")[:123])

    def on_transport_pong(self, callback: Callable[[], None]) -> None:
        """WebSocket-level pongs count as liveness (PROTOCOL.md §3 idle timeout)."""
        original = self._protocol.onPong

        def on_pong(payload: bytes) -> None:
            callback()
            original(payload)

        self._protocol.onPong = on_pong


class AsgiWriter:
    """Generic ASGI: a bounded per-socket queue drained by one task (uvicorn and others)."""

    def __init__(self, send: Callable, max_queued_bytes: int, on_overflow: OnOverflow) -> None:
        self._send = send
        self._queue: deque[str] = deque()
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
        return self._enqueue(text, len(text))

    def _enqueue(self, text: str, size: int) -> bool:
        if self._closed:
            return False
        self._queue.append(text)
        self._queued += size
        if self._queued > self._max:
            self._on_overflow()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return True

    async def _drain(self) -> None:
        try:
            while self._queue and not self._closed:
                text = self._queue.popleft()
                self._queued -= len(text)
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
    """The fastest writer this ASGI server allows."""
    if isinstance(send, functools.partial) and send.args:
        server = getattr(send.func, "__self__", None)
        protocol = send.args[0]
        try:
            from daphne.server import Server
        except ImportError:  # pragma: no cover - daphne is a requirement
            Server = None
        if Server is not None and isinstance(server, Server) and hasattr(protocol, "sendPreparedMessage"):
            return DaphneWriter(protocol, server, max_queued_bytes, on_overflow)
    return AsgiWriter(send, max_queued_bytes, on_overflow)
