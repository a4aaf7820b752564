"""The daphne writer: a publication framed once per process, written straight to the socket.

Why: under daphne, ``await send({"type": "websocket.send", ...})`` encodes and frames the text
once per subscriber, and nothing tells the application how much is queued for a slow reader
(Twisted buffers without bound). ``DaphneWriter`` frames a publication once per process with
autobahn's ``prepareMessage`` (its broadcast primitive), writes the same bytes to every
subscriber, and reads the transport's queued bytes to find slow consumers.

Payloads (``hub.engine.transport.Payload`` and ``PayloadBatch``) are duck-typed here: ``encoded``,
``parts()`` and three cache slots this module owns (``_prepared``, ``_factory``, ``frame``).
This module imports neither daphne nor ``hub.engine.transport``: it recognises daphne's ``send`` by
looking at ``sys.modules``, so a process that never imported daphne pays nothing.
Every internal used here is a row of ``hub.daphne.checks.NEEDS``.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from typing import Any, Callable

from hub.daphne import fast_path

OnOverflow = Callable[[], None]


def daphne_protocol(send: Callable) -> Any:
    """The autobahn protocol behind daphne's ``send`` (``partial(server.handle_reply,
    protocol)``), or None under any other ASGI server."""
    if type(send) is not functools.partial or not send.args:
        return None
    module = sys.modules.get("daphne.server")
    server = getattr(send.func, "__self__", None)
    if module is None or not isinstance(server, module.Server):
        return None
    return send.args[0]


def writer_for(send: Callable, max_queued_bytes: int, on_overflow: OnOverflow) -> "DaphneWriter | None":
    """A ``DaphneWriter`` when ``send`` is daphne's and the fast path is on, else None."""
    protocol = daphne_protocol(send)
    if protocol is None or not fast_path():
        return None
    return DaphneWriter(protocol, max_queued_bytes, on_overflow)


# daphne's stock close (autobahn's ``sendClose``) takes only these; PROTOCOL.md uses 1001,
# 1009 and 1013 too.
def _stock_close_code(code: int) -> bool:
    return code == 1000 or 3000 <= code <= 4999


class Backpressure:
    """A streaming producer (Twisted's public ``IPushProducer`` contract) registered through
    autobahn's documented ``registerProducer``: Twisted pauses it when it holds more than its
    ``bufferSize`` (64 KiB) for the socket and resumes it once drained. The fallback's sends
    wait while paused, so the ``AsgiWriter`` queue above them grows and its byte limit finds
    slow consumers; stock daphne would buffer without bound instead."""

    __slots__ = ("paused", "_waiter", "_previous")

    def __init__(self, previous: Any = None) -> None:
        self.paused = False
        self._waiter: Any = None
        # twisted.web's HTTPChannel stays registered on the transport after daphne's
        # upgrade (it pauses reading while writes are stuck): it keeps hearing every call.
        self._previous = previous

    def pauseProducing(self) -> None:
        self.paused = True
        if self._previous is not None:
            self._previous.pauseProducing()

    def resumeProducing(self) -> None:
        self.paused = False
        self._wake()
        if self._previous is not None:
            self._previous.resumeProducing()

    def stopProducing(self) -> None:  # the connection is gone: let the sender find out
        self.paused = False
        self._wake()
        if self._previous is not None:
            self._previous.stopProducing()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        while self.paused:
            if self._waiter is None:
                self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter


def stock_send(send: Callable) -> Callable:
    """``send`` for the fallback path: stock ASGI, plus two things stock daphne lacks, each
    through a public autobahn/Twisted call (rows ``fallback=True`` in ``checks.NEEDS``):
    sends wait while Twisted's buffer for the socket is full (``Backpressure``), and a
    ``websocket.close`` with a code daphne's stock close refuses goes out through autobahn's
    ``sendCloseFrame`` (without it: a plain close). Other servers' ``send`` as is."""
    protocol = daphne_protocol(send)
    if protocol is None:
        return send
    close_frame = getattr(protocol, "sendCloseFrame", None)
    backpressure: Backpressure | None = None
    try:
        transport = protocol.transport
        previous = getattr(transport, "producer", None)
        if previous is not None:
            transport.unregisterProducer()
        backpressure = Backpressure(previous)
        protocol.registerProducer(backpressure, True)
    except Exception:  # no such calls (an upgrade): sends are not held back
        backpressure = None

    async def send_(message: dict) -> None:
        kind = message["type"]
        if kind == "websocket.send" and backpressure is not None and backpressure.paused:
            await backpressure.wait()
        elif kind == "websocket.close":
            code = message.get("code", 1000)
            if not _stock_close_code(code):
                reason = (message.get("reason") or "").encode("utf-8")[:123]
                if close_frame is not None and protocol.state == protocol.STATE_OPEN:
                    close_frame(code=code, reasonUtf8=reason)
                    return
                message = {"type": "websocket.close", "code": 1000}
        await send(message)

    return send_


def prepare(payload: Any, factory: Any) -> None:
    """Frame ``payload`` (each of its parts) once for ``factory``; ``payload.frame`` is then
    the bytes to write: one frame, or a batch's frames back to back."""
    parts = payload.parts()
    for item in parts:
        if item._factory is not factory:
            item._prepared = factory.prepareMessage(item.encoded, False)
            item._factory = factory
            item.frame = item._prepared.payloadHybi
    if len(parts) != 1 or parts[0] is not payload:
        payload.frame = b"".join([item.frame for item in parts])
        payload._factory = factory


def send_prepared(payload: Any, protocol: Any) -> None:
    """The queued path: through autobahn, which keeps its own send queue in order."""
    for item in payload.parts():
        protocol.sendPreparedMessage(item._prepared)


class DaphneWriter:
    """Writes straight to daphne's autobahn protocol (same event loop: asyncio reactor)."""

    __slots__ = ("_protocol", "_factory", "_open_state", "_max", "_on_overflow",
                 "_sock_send", "_transport")

    def __init__(self, protocol: Any, max_queued_bytes: int, on_overflow: OnOverflow) -> None:
        self._protocol = protocol
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
        """Bytes Twisted holds for this socket (0 on a transport without its buffers,
        e.g. TLS, which buffers on its own)."""
        transport = self._protocol.transport
        if transport is None:
            return 0
        return (len(getattr(transport, "dataBuffer", b"")) - getattr(transport, "offset", 0)
                + getattr(transport, "_tempDataLen", 0))

    def write_payload(self, payload: Any) -> bool:
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
            prepare(payload, self._factory)
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
                send_prepared(payload, protocol)
                return True
            if sent == len(frame):
                return True  # nothing queued before, nothing queued now
            t.write(frame[sent:])
        else:
            send_prepared(payload, protocol)
        if self.queued_bytes() > self._max:
            self._on_overflow()
        return True

    def _direct(self, protocol: Any) -> Any:
        """Decided once the socket is open: plain TCP (Twisted ``tcp.Connection``), no
        per-message compression -> its socket's ``send``; otherwise False."""
        transport = protocol.transport
        ok = (transport is not None and protocol._perMessageCompress is None
              and not getattr(transport, "TLS", True) and hasattr(transport, "getHandle")
              and all(hasattr(transport, a) for a in ("dataBuffer", "offset", "_tempDataLen",
                                                       "connected", "disconnecting",
                                                       "_writeDisconnected")))
        self._transport = transport
        self._sock_send = transport.getHandle().send if ok else False
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
