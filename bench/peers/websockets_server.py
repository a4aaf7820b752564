"""Peer: a plain ``websockets`` server, the naive way.

A publication is serialized once, then the handler loops ``await ws.send(text)`` over the
channel's subscribers (no per-subscriber task, no bounded queue). It speaks the bench's
subset of PROTOCOL.md: ``connected``; ``subscribe`` -> ``subscribed``; ``publish`` ->
fan-out + ``published`` (echoing ``id``); ``ping`` -> ``pong``.

    python -m bench.peers.websockets_server --port 8766
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
from datetime import datetime, timezone

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

channels: dict[str, set] = {}
offsets: dict[str, int] = {}
ids = itertools.count(1)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def handler(ws) -> None:
    mine: set[str] = set()
    await ws.send(json.dumps({"type": "connected", "client_id": f"c_{next(ids)}", "user": None,
                              "server": "websockets", "heartbeat_interval": 0,
                              "timestamp": now_iso()}))
    try:
        async for raw in ws:
            try:
                msg = json.loads(raw)
            except ValueError:
                await ws.send(json.dumps({"type": "error", "code": "invalid_json",
                                          "message": "bad JSON"}))
                continue
            t = msg.get("type")
            if t == "subscribe":
                ch = msg["channel"]
                channels.setdefault(ch, set()).add(ws)
                mine.add(ch)
                await ws.send(json.dumps({"type": "subscribed", "channel": ch,
                                          "offset": offsets.get(ch, 0), "epoch": "w"}))
            elif t == "publish":
                ch = msg["channel"]
                off = offsets[ch] = offsets.get(ch, 0) + 1
                text = json.dumps({"type": msg.get("event", "message"), "channel": ch,
                                   "offset": off, "timestamp": now_iso(), "data": msg.get("data")})
                for sub in list(channels.get(ch, ())):
                    try:
                        await sub.send(text)
                    except ConnectionClosed:
                        pass
                reply = {"type": "published", "channel": ch, "offset": off}
                if "id" in msg:
                    reply["id"] = msg["id"]
                await ws.send(json.dumps(reply))
            elif t == "ping":
                await ws.send(json.dumps({"type": "pong", "timestamp": now_iso()}))
    except ConnectionClosed:
        pass
    finally:
        for ch in mine:
            channels.get(ch, set()).discard(ws)


async def main_async(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    async with serve(handler, host, port, backlog=4096, max_size=1 << 20):
        await stop


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8766)
    args = ap.parse_args()
    print(f"websockets peer pid {os.getpid()} on {args.host}:{args.port}", flush=True)
    asyncio.run(main_async(args.host, args.port))


if __name__ == "__main__":
    main()
