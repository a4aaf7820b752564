"""A lean RFC 6455 WebSocket client on raw asyncio sockets, built for receiving fast.

Why not the ``websockets`` library: its per-message cost (a task wake-up, a queue, UTF-8
decoding, a JSON parse in the caller) caps one process at roughly 20-40k messages/s, which
is below what the servers under test must deliver. This client:

* does the handshake itself (and checks ``Sec-WebSocket-Accept``);
* masks what it sends (RFC 6455 §5.3: random 4-byte key per frame);
* parses unmasked server frames straight out of the receive buffer, in ``data_received``,
  with no task switch and no copy for the common case (several frames per read);
* recognises a bench publication with one compiled regex (``"bseq": N, "bts": T``) instead
  of a JSON parse, and counts it: latency (receipt time - publisher's ``bts``), and
  delivery of sequence ``N`` to this socket (first time = distinct, again = duplicate);
* hands every other text frame (``connected``, ``subscribed``, ``published``, ``heartbeat``,
  ``error``...) to a callback that parses it as JSON; answers WebSocket pings with pongs and
  protocol ``heartbeat`` frames with ``{"type": "pong"}``; records the close code.

Dialect "socketio" (a path with ``EIO=4``, e.g. ``/socket.io/?EIO=4&transport=websocket``):
the same messages as socket.io events over Engine.IO v4, WebSocket transport only. The client
answers Engine.IO's open (``0{...}``) with a namespace connect (``40``), takes the server's
``40{"sid":...}`` as ``connected``, answers ping ``2`` with pong ``3``, reads
``42["event",{...}]`` as the object ``{...}`` (its ``type`` defaulting to the event name) and
sends ``{"type": T, ...}`` as ``42["T",{...}]``. Publications are counted by the same
``"bseq": N, "bts": T`` pattern inside the event, so the hot path does not change.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import re
from array import array
from time import time_ns

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# The publisher puts {"bseq": <int>, "bts": <time_ns>} first in ``data``. Whitespace-tolerant,
# so it matches json.dumps with either separators. Key order: bseq < bts, so sort_keys is fine.
PUB_RE = re.compile(rb'"bseq":\s*(\d+),\s*"bts":\s*(\d+)')

_getrandbits = random.getrandbits


def dialect_of(path: str) -> str:
    """ "socketio" for an Engine.IO v4 path (``...?EIO=4&transport=websocket``), else "hub"."""
    return "socketio" if "EIO=4" in path else "hub"


def encode_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One masked client frame (FIN set)."""
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 0xFE)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0xFF)) + n.to_bytes(8, "big")
    key = _getrandbits(32).to_bytes(4, "big")
    if n:
        mask = (key * (n // 4 + 1))[:n]
        payload = (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(n, "big")
    return header + key + payload


class RecvStats:
    """Counters shared by all sockets of one worker (cheaper than per-socket counters)."""

    __slots__ = ("lats", "deliveries", "distinct", "dups", "first_rx", "last_rx", "closes",
                 "errors", "heartbeats", "dup_samples")

    def __init__(self) -> None:
        self.lats = array("q")  # receipt - publisher timestamp, ns
        self.deliveries = 0
        self.distinct = 0
        self.dups = 0
        self.first_rx = 0
        self.last_rx = 0
        self.closes: dict[str, int] = {}  # close code -> count (server-initiated or lost)
        self.errors: dict[str, int] = {}  # protocol error codes received
        self.heartbeats = 0
        self.dup_samples: list = []  # (socket's client_id, bseq, receipt time ns): first few


class WSClient(asyncio.Protocol):
    """One client socket. ``on_control(client, obj)`` gets every non-publication JSON frame."""

    def __init__(self, host: str, port: int, path: str, stats: RecvStats, on_control=None,
                 on_pub=None, headers: dict | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.host, self.port, self.path = host, port, path
        self.stats = stats
        self.on_control = on_control
        self.on_pub = on_pub  # optional callback(seq) for every publication (publisher's pacing)
        self.headers = headers or {}
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.handshaken = False
        self.key = base64.b64encode(random.randbytes(16))
        self.opened = loop.create_future()  # result: None, or exception on handshake failure
        self.closed = loop.create_future()  # result: close code (int) or None
        self.close_code: int | None = None
        self.closing = False
        self.seen = bytearray(64)  # seen[seq] = 1 once publication seq arrived here
        self.frag: list[bytes] | None = None
        self.frag_op = 0
        self.client_id = None
        self.welcome = loop.create_future()  # the server's {"type": "connected"} frame
        self.waiters: dict[str, asyncio.Future] = {}  # reply type -> future (one at a time)
        self.sio = dialect_of(path) == "socketio"

    # --- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        lines = [
            f"GET {self.path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {self.key.decode()}",
            "Sec-WebSocket-Version: 13",
        ]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    def connection_lost(self, exc) -> None:
        why = ConnectionError(f"connection closed (code {self.close_code})")
        for fut in [self.opened, self.welcome, *self.waiters.values()]:
            if not fut.done():
                fut.set_exception(why)
                fut.exception()  # retrieved: no "never retrieved" noise if nobody waits
        self.waiters.clear()
        if not self.closed.done():
            if not self.closing:
                key = str(self.close_code) if self.close_code is not None else "abnormal"
                self.stats.closes[key] = self.stats.closes.get(key, 0) + 1
            self.closed.set_result(self.close_code)

    def data_received(self, data: bytes) -> None:
        if not self.handshaken:
            data = self._handshake(data)
            if not data:
                return
        buf = self.buf + data if self.buf else data
        now = time_ns()
        before = self.stats.deliveries
        n = len(buf)
        pos = 0
        search = PUB_RE.search
        stats = self.stats
        while n - pos >= 2:
            ln = buf[pos + 1] & 0x7F
            if ln < 126:
                start = pos + 2
            elif ln == 126:
                if n - pos < 4:
                    break
                ln = (buf[pos + 2] << 8) | buf[pos + 3]
                start = pos + 4
            else:
                if n - pos < 10:
                    break
                ln = int.from_bytes(buf[pos + 2:pos + 10], "big")
                start = pos + 10
            end = start + ln
            if end > n:
                break
            b0 = buf[pos]
            if b0 == 0x81:  # FIN + text: the hot path
                m = search(buf, start, end)
                if m is not None:
                    seq = int(m[1])
                    stats.lats.append(now - int(m[2]))
                    stats.deliveries += 1
                    seen = self.seen
                    if seq >= len(seen):
                        seen.extend(bytes(max(seq + 1 - len(seen), len(seen))))
                    if seen[seq]:
                        stats.dups += 1
                        if len(stats.dup_samples) < 20:
                            stats.dup_samples.append((self.client_id, seq, now))
                    else:
                        seen[seq] = 1
                        stats.distinct += 1
                    if self.on_pub is not None:
                        self.on_pub(seq)
                else:
                    self._control(buf[start:end])
            else:
                self._other(b0, buf[start:end], now)
            pos = end
        if stats.deliveries != before:
            if stats.first_rx == 0:
                stats.first_rx = now
            stats.last_rx = now
        self.buf = buf[pos:] if pos < n else b""

    # --- internals -------------------------------------------------------------------------

    def _handshake(self, data: bytes) -> bytes:
        self.buf += data
        head_end = self.buf.find(b"\r\n\r\n")
        if head_end < 0:
            if len(self.buf) > 65536:
                self._fail("handshake response too large")
            return b""
        head, rest = self.buf[:head_end].decode("latin-1"), self.buf[head_end + 4:]
        self.buf = b""
        status_line, *header_lines = head.split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or parts[1] != "101":
            self._fail(f"HTTP {parts[1] if len(parts) > 1 else '?'}")
            return b""
        headers = {}
        for line in header_lines:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        expected = base64.b64encode(hashlib.sha1(self.key + GUID).digest()).decode()
        if headers.get("sec-websocket-accept") != expected:
            self._fail("bad Sec-WebSocket-Accept")
            return b""
        self.handshaken = True
        self.opened.set_result(None)
        return rest

    def _fail(self, why: str) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(why))
            self.opened.exception()
        self.closing = True
        if self.transport is not None:
            self.transport.abort()

    def _control(self, payload: bytes) -> None:
        if self.sio:
            obj = self._sio_frame(payload)
            if obj is None:
                return
        else:
            try:
                obj = json.loads(payload)
            except ValueError:
                return
        t = obj.get("type")
        if t == "heartbeat":
            self.stats.heartbeats += 1
            self.send_json({"type": "pong"})
        elif t == "connected":
            self.client_id = obj.get("client_id")
            if not self.welcome.done():
                self.welcome.set_result(obj)
        elif t == "error":
            code = str(obj.get("code"))
            self.stats.errors[code] = self.stats.errors.get(code, 0) + 1
            for fut in self.waiters.values():
                if not fut.done():
                    fut.set_exception(RuntimeError(f"error frame: {code}"))
            self.waiters.clear()
        waiter = self.waiters.pop(t, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(obj)
        if self.on_control is not None:
            self.on_control(self, obj)

    def _sio_frame(self, payload: bytes) -> dict | None:
        """An Engine.IO v4 / socket.io text frame as the hub protocol's object (None when it
        is Engine.IO's own business, answered here)."""
        if payload == b"2":  # Engine.IO ping -> pong
            self.stats.heartbeats += 1
            self.write_frame(b"3")
            return None
        if payload[:1] == b"0":  # Engine.IO open -> connect to the main namespace
            self.write_frame(b"40")
            return None
        if payload[:2] == b"40":  # namespace connected: the hub's "connected"
            try:
                sid = json.loads(payload[2:] or b"{}").get("sid")
            except ValueError:
                sid = None
            return {"type": "connected", "client_id": sid}
        if payload[:2] == b"44":  # connect_error
            return {"type": "error", "code": "connect_error"}
        if payload[:2] == b"42":
            try:
                event, *args = json.loads(payload[2:])
            except ValueError:
                return None
            obj = args[0] if args and isinstance(args[0], dict) else {}
            obj.setdefault("type", event)
            return obj
        return None

    def _other(self, b0: int, payload: bytes, now: int) -> None:
        op = b0 & 0x0F
        fin = b0 & 0x80
        if op == 0x9:  # ping
            self.write_frame(payload, 0xA)
        elif op == 0xA:  # pong
            pass
        elif op == 0x8:  # close
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            if not self.closing:
                self.closing = True
                key = str(self.close_code)
                self.stats.closes[key] = self.stats.closes.get(key, 0) + 1
                self.write_frame(payload[:2], 0x8)
            if self.transport is not None:
                self.transport.close()
        elif op in (0x1, 0x2) and not fin:
            self.frag, self.frag_op = [payload], op
        elif op == 0x0 and self.frag is not None:
            self.frag.append(payload)
            if fin:
                whole, self.frag = b"".join(self.frag), None
                if self.frag_op == 0x1:
                    # Re-enter the hot path with an unfragmented frame.
                    saved, self.buf = self.buf, b""
                    self.data_received(_server_frame(whole))
                    self.buf = saved
        # binary frames: not part of the protocol; ignored

    # --- sending ---------------------------------------------------------------------------

    def write_frame(self, payload: bytes, opcode: int = 0x1) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode_frame(payload, opcode))

    def send_json(self, obj) -> None:
        text = json.dumps(obj, separators=(",", ":"))
        if self.sio:
            text = f'42["{obj["type"]}",{text}]'
        self.write_frame(text.encode())

    def event_wrap(self, event: str) -> tuple[str, str]:
        """What goes around a JSON message text sent as ``event`` (the publisher's hot
        loop builds its text itself): nothing for the hub, ``42["event",`` ... ``]`` for
        socket.io."""
        return (f'42["{event}",', "]") if self.sio else ("", "")

    async def request(self, obj, reply_type: str, timeout: float = 30.0):
        """Send ``obj`` and wait for the next frame of type ``reply_type`` (or an error)."""
        fut = asyncio.get_running_loop().create_future()
        self.waiters[reply_type] = fut
        self.send_json(obj)
        return await asyncio.wait_for(fut, timeout)

    def close(self, code: int = 1000) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.closing = True
        self.write_frame(code.to_bytes(2, "big"), 0x8)
        # Do not wait for the server's close frame; the bench is done with this socket.
        self.transport.close()

    def abort(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.abort()


def _server_frame(payload: bytes) -> bytes:
    """An unmasked FIN text frame (used to re-parse a reassembled fragmented message)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload


async def connect(host: str, port: int, path: str, stats: RecvStats, on_control=None,
                  on_pub=None, timeout: float = 30.0, headers: dict | None = None):
    """Open a socket, do the handshake, and return the WSClient once the 101 arrived."""
    loop = asyncio.get_running_loop()
    _, client = await asyncio.wait_for(
        loop.create_connection(lambda: WSClient(host, port, path, stats, on_control, on_pub, headers),
                               host, port), timeout)
    try:
        await asyncio.wait_for(asyncio.shield(client.opened), timeout)
    except BaseException:
        client.abort()
        raise
    return client
