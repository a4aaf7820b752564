"""Issue 3: the publisher's cost of one ``group_send`` in channels-redis, by layer and group size.

``RedisChannelLayer`` (core, the default) reads the whole group (ZRANGE), decodes every
member name, builds the per-key message (its ``__asgi_channel__`` list names every member)
and runs a Lua script; ``RedisPubSubChannelLayer`` does one PUBLISH to the group's channel
whatever its size. Members here are channels of one process (``new_channel()``), as in one
daphne process holding N consumers, held by a second process; the publisher (this process)
times ``await group_send(...)`` (wall time).

    python -m bench.layer_cost --redis redis://127.0.0.1:PORT/0 --sizes 1,1000,5000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time


def _layer(kind: str, url: str):
    if kind == "core":
        from channels_redis.core import RedisChannelLayer as cls
    else:
        from channels_redis.pubsub import RedisPubSubChannelLayer as cls
    return cls(hosts=[url])


def _members_process(pipe, kind: str, url: str, group: str, n: int) -> None:
    """The receiving side: one process whose ``n`` consumer channels are in ``group``."""

    async def main() -> None:
        layer = _layer(kind, url)
        t0 = time.perf_counter()
        members = [await layer.new_channel() for _ in range(n)]
        for m in members:
            await layer.group_add(group, m)
        pipe.send(time.perf_counter() - t0)
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        loop.add_reader(pipe.fileno(), lambda: done.done() or done.set_result(None))
        await done
        await layer.flush()

    asyncio.run(main())


async def measure(kind: str, url: str, n: int, reps: int = 20) -> dict:
    """Time ``group_send`` from a publisher process to a group of ``n`` members held by
    another process (so the members' own receive work is not counted as publisher cost)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    group = f"bench{n}"
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_members_process, args=(child, kind, url, group, n), daemon=True)
    proc.start()
    try:
        if not parent.poll(300):
            raise TimeoutError("members process not ready")
        setup = parent.recv()
        layer = _layer(kind, url)
        message = {"type": "hub.fanout", "c": "bench", "o": 1,
                   "t": '{"type":"tick","channel":"bench","offset":1,"data":{"x":1}}'}
        await layer.group_send(group, message)  # warm-up (connections, script cache)
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            await layer.group_send(group, message)
            times.append(time.perf_counter() - t)
            await asyncio.sleep(0.1)  # let the members process finish its receive work
        await layer.flush()
    finally:
        parent.send("stop")
        proc.join(30)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
    times.sort()
    return {"layer": f"channels_redis.{kind}", "group_members": n, "reps": reps,
            "group_send_mean_ms": round(statistics.mean(times) * 1e3, 3),
            "group_send_p50_ms": round(times[len(times) // 2] * 1e3, 3),
            "group_send_max_ms": round(times[-1] * 1e3, 3),
            "members_setup_s": round(setup, 2)}


async def measure_all(url: str, sizes: list[int], reps: int = 20) -> list[dict]:
    out = []
    for n in sizes:
        for kind in ("core", "pubsub"):
            out.append(await measure(kind, url, n, reps))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--redis", required=True, help="redis://127.0.0.1:PORT/0 (use a private one)")
    ap.add_argument("--sizes", default="1,1000,5000")
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args()
    for rec in asyncio.run(measure_all(args.redis, [int(x) for x in args.sizes.split(",")], args.reps)):
        print(json.dumps(rec))


if __name__ == "__main__":
    main()
