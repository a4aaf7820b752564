"""A trivial raw-asyncio WebSocket server speaking the bench's subset of PROTOCOL.md.

Two uses:
* the load tool's ceiling: a ``blast`` frame makes it write ``count`` publications to every
  subscriber, ``batch`` frames per socket write, so the server costs almost nothing per
  delivery and whatever limit shows up is the load tool's own;
* a "raw asyncio" peer: a ``publish`` frame is fanned out like a minimal hand-written server
  would (frame bytes built once, ``transport.write`` per subscriber).

    python -m bench.trivial_server --port 8765
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import signal
from datetime import datetime, timezone
from time import time_ns

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(payload: bytes, opcode: int = 0x1) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 65536:
        return bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big") + payload


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Hub:
    def __init__(self) -> None:
        self.channels: dict[str, set] = {}
        self.offsets: dict[str, int] = {}
        self.next_id = 0


class Conn(asyncio.Protocol):
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.buf = b""
        self.open = False
        self.transport = None
        self.subs: set[str] = set()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        for ch in self.subs:
            self.hub.channels.get(ch, set()).discard(self)

    def send(self, obj) -> None:
        self.transport.write(frame(json.dumps(obj).encode()))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.open:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buf = self.buf[:end].decode("latin-1"), self.buf[end + 4:]
            key = ""
            for line in head.split("\r\n")[1:]:
                k, _, v = line.partition(":")
                if k.strip().lower() == "sec-websocket-key":
                    key = v.strip()
            accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
            self.transport.write((
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
            self.open = True
            self.hub.next_id += 1
            self.send({"type": "connected", "client_id": f"c_{self.hub.next_id}", "user": None,
                       "server": "trivial", "heartbeat_interval": 0, "timestamp": now_iso()})
        buf = self.buf
        while len(buf) >= 6:
            b0, b1 = buf[0], buf[1]
            ln, pos = b1 & 0x7F, 2
            if ln == 126:
                if len(buf) < 8:
                    break
                ln, pos = int.from_bytes(buf[2:4], "big"), 4
            elif ln == 127:
                if len(buf) < 14:
                    break
                ln, pos = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < pos + 4 + ln:
                break
            key = buf[pos:pos + 4]
            payload = buf[pos + 4:pos + 4 + ln]
            buf = buf[pos + 4 + ln:]
            if ln:
                mask = (key * (ln // 4 + 1))[:ln]
                payload = (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(ln, "big")
            op = b0 & 0x0F
            if op == 0x8:
                self.transport.write(frame(payload[:2], 0x8))
                self.transport.close()
                return
            if op == 0x9:
                self.transport.write(frame(payload, 0xA))
            elif op == 0x1:
                self.on_message(payload)
        self.buf = buf

    def on_message(self, payload: bytes) -> None:
        try:
            msg = json.loads(payload)
        except ValueError:
            self.send({"type": "error", "code": "invalid_json", "message": "bad JSON"})
            return
        t = msg.get("type")
        hub = self.hub
        if t == "subscribe":
            ch = msg["channel"]
            hub.channels.setdefault(ch, set()).add(self)
            self.subs.add(ch)
            self.send({"type": "subscribed", "channel": ch, "offset": hub.offsets.get(ch, 0),
                       "epoch": "t"})
        elif t == "publish":
            ch = msg["channel"]
            off = hub.offsets[ch] = hub.offsets.get(ch, 0) + 1
            text = frame(json.dumps({"type": msg.get("event", "message"), "channel": ch,
                                     "offset": off, "timestamp": now_iso(),
                                     "data": msg.get("data")}).encode())
            for c in hub.channels.get(ch, ()):
                c.transport.write(text)
            reply = {"type": "published", "channel": ch, "offset": off}
            if "id" in msg:
                reply["id"] = msg["id"]
            self.send(reply)
        elif t == "blast":
            asyncio.ensure_future(self.blast(msg))
        elif t == "ping":
            self.send({"type": "pong", "timestamp": now_iso()})

    async def blast(self, msg) -> None:
        hub = self.hub
        ch, count, batch = msg["channel"], int(msg["count"]), int(msg.get("batch", 50))
        pad = ',"pad":"' + "x" * int(msg.get("pad", 0)) + '"' if msg.get("pad") else ""
        subs = list(hub.channels.get(ch, ()))
        ts = now_iso()
        seq = 0
        while seq < count:
            n = min(batch, count - seq)
            t = time_ns()
            chunk = b"".join(
                frame((f'{{"type":"tick","channel":"{ch}","offset":{s + 1},"timestamp":"{ts}",'
                       f'"data":{{"bseq":{s},"bts":{t}{pad}}}}}').encode())
                for s in range(seq, seq + n))
            seq += n
            for c in subs:
                c.transport.write(chunk)
            # Back-pressure: wait while any subscriber has a lot buffered.
            while any(c.transport.get_write_buffer_size() > 1 << 20 for c in subs
                      if not c.transport.is_closing()):
                await asyncio.sleep(0.001)
            await asyncio.sleep(0)
        self.send({"type": "blasted", "channel": ch, "count": count})


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    hub = Hub()
    server = await loop.create_server(lambda: Conn(hub), host, port, backlog=4096)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    await stop
    server.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8765)
    args = ap.parse_args()
    print(f"trivial server pid {os.getpid()} on {args.host}:{args.port}", flush=True)
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
