"""Small helpers for tests that talk to a real hub with the ``websockets`` library."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable

import websockets

DEFAULT_TIMEOUT = 10.0


async def connect(url: str, **kwargs: Any):
    kwargs.setdefault("open_timeout", DEFAULT_TIMEOUT)
    return await websockets.connect(url, **kwargs)


async def recv_json(ws, timeout: float = DEFAULT_TIMEOUT) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def send_json(ws, frame: dict) -> None:
    await ws.send(json.dumps(frame))


async def recv_until(ws, predicate: Callable[[dict], bool], timeout: float = DEFAULT_TIMEOUT,
                     skip_heartbeats: bool = True) -> dict:
    """The first frame matching ``predicate``; frames before it are dropped."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        frame = await recv_json(ws, max(0.01, deadline - loop.time()))
        if skip_heartbeats and frame.get("type") == "heartbeat":
            continue
        if predicate(frame):
            return frame


async def expect_close(ws, timeout: float = DEFAULT_TIMEOUT) -> int:
    """Read until the server closes; returns the close code."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except websockets.ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else exc.code if hasattr(exc, "code") else None


async def connected(url: str, **kwargs: Any):
    """Connect and read the ``connected`` frame: (ws, connected_frame)."""
    ws = await connect(url, **kwargs)
    frame = await recv_until(ws, lambda f: f["type"] == "connected")
    return ws, frame
