"""A WebSocket subscriber that records every publication, for the monitor's hub tests."""

from __future__ import annotations

import asyncio
import collections
import json
from typing import Any, Callable

import websockets


class Subscriber:
    def __init__(self, ws) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self.task = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, ws_url: str, token: str, channels: list[str]) -> "Subscriber":
        ws = await websockets.connect(f"{ws_url}/ws/?token={token}", open_timeout=15)
        subscriber = cls(ws)
        await subscriber.wait_for(lambda f: f["type"] == "connected")
        await ws.send(json.dumps({"type": "subscribe", "channels": channels}))
        for channel in channels:
            await subscriber.wait_for(lambda f, c=channel: f["type"] == "subscribed" and f["channel"] == c)
        return subscriber

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.frames.append(json.loads(raw))
        except websockets.ConnectionClosed:
            pass

    def publications(self, event: str | None = None, channel: str | None = None) -> list[dict[str, Any]]:
        return [f for f in self.frames if "channel" in f and f["type"] not in ("subscribed", "unsubscribed")
                and (event is None or f["type"] == event) and (channel is None or f["channel"] == channel)]

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60.0) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for frame in self.frames:
                if predicate(frame):
                    return frame
            if self.task.done():
                break
            await asyncio.sleep(0.05)
        seen = collections.Counter((f.get("channel"), f["type"]) for f in self.frames)
        raise AssertionError(f"no matching frame within {timeout}s; got {dict(seen)}")

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.wait_for(self.task, 10)


def counts(frames: list[dict[str, Any]], key: Callable[[dict[str, Any]], Any]) -> collections.Counter:
    return collections.Counter(key(f) for f in frames)
