"""The hub's publisher cost per publication vs the number of local subscribers (issue 7).

In one process, with the hub's own settings: build the node (in-memory, or Redis with
``--redis``), subscribe N fake connections to ``bench``, then time ``await
hub.publish.publish("bench", ...)`` alone: the call a publisher waits for (history append +
one ``group_send``). The fan-out to the N sockets happens afterwards in the node's listener
task and is timed separately (``fanout_ms``: from the publish call to the last fake socket
written). In one process the publisher's ``await`` also lets the loop run the fan-out (the
listener wakes up in between), so with ``--redis`` the same is measured again with the N
subscribers held by a second process: the publisher's own cost, alone.

    python -m bench.publish_cost --sizes 0,1000,5000 [--redis redis://127.0.0.1:PORT/0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import time


class FakeConn:
    """What the node needs from a consumer; counts writes instead of writing."""

    __slots__ = ("client_id", "username", "writes", "done", "want")

    def __init__(self, i: int) -> None:
        self.client_id = f"fake{i}"
        self.username = None
        self.writes = 0
        self.done = None
        self.want = 0

    def write_payload(self, payload) -> bool:
        self.writes += 1
        if self.done is not None and self.writes >= self.want and not self.done.done():
            self.done.set_result(time.perf_counter())
        return True

    def write_text(self, text: str) -> bool:
        return self.write_payload(None)

    def request_close(self, code: int, reason: str = "") -> None:
        pass


async def measure(n: int, reps: int) -> dict:
    from hub.engine.node import get_node, reset_node
    from hub.publish import publish

    reset_node()
    node = get_node()
    await node.ensure_started()
    conns = [FakeConn(i) for i in range(n)]
    for c in conns:
        node.add_connection(c)
        sub = await node.subscribe(c, "bench")
        node.go_live(sub, 0)
    await publish("bench", "tick", {"warm": True})
    await asyncio.sleep(0.05)
    pub_times, fan_times = [], []
    loop = asyncio.get_running_loop()
    for i in range(reps):
        last = conns[-1] if conns else None
        if last is not None:
            last.done = loop.create_future()
            last.want = last.writes + 1
        t0 = time.perf_counter()
        await publish("bench", "tick", {"bseq": i, "bts": time.time_ns()})
        t1 = time.perf_counter()
        pub_times.append(t1 - t0)
        if last is not None:
            t_end = await asyncio.wait_for(last.done, 30)
            fan_times.append(t_end - t0)
        await asyncio.sleep(0.01)
    for c in conns:
        node.remove_connection(c)
    await asyncio.sleep(0.05)
    reset_node()
    pub_times.sort()
    out = {"local_subscribers": n, "reps": reps,
           "publish_p50_ms": round(pub_times[len(pub_times) // 2] * 1e3, 3),
           "publish_mean_ms": round(statistics.mean(pub_times) * 1e3, 3),
           "publish_max_ms": round(pub_times[-1] * 1e3, 3)}
    if fan_times:
        fan_times.sort()
        out["fanout_p50_ms"] = round(fan_times[len(fan_times) // 2] * 1e3, 3)
        out["fanout_us_per_subscriber"] = round(fan_times[len(fan_times) // 2] * 1e6 / n, 2)
    return out


async def hold(n: int) -> None:
    """--hold N: keep N fake subscribers of ``bench`` in this process until stdin closes."""
    from hub.engine.node import get_node

    node = get_node()
    await node.ensure_started()
    conns = [FakeConn(i) for i in range(n)]
    for c in conns:
        node.add_connection(c)
        sub = await node.subscribe(c, "bench")
        node.go_live(sub, 0)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    print(json.dumps({"held": n, "writes_on_last": conns[-1].writes if conns else 0}), flush=True)


async def measure_remote(n: int, reps: int, redis_url: str) -> dict:
    """Publisher with no local subscribers; N subscribers held by another process (Redis)."""
    import subprocess

    holder = subprocess.Popen([sys.executable, "-m", "bench.publish_cost", "--hold", str(n),
                               "--redis", redis_url], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        line = holder.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"holder process said {line!r}")
        rec = await measure(0, reps)
    finally:
        holder.stdin.close()
        tail = holder.stdout.read()
        holder.wait(30)
    rec["local_subscribers"] = 0
    rec["subscribers_in_other_process"] = n
    try:
        rec["other_process_received"] = json.loads(tail.strip().splitlines()[-1])["writes_on_last"]
    except (ValueError, IndexError, KeyError):
        pass
    return rec


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="0,1000,5000")
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--redis", help="a private redis://127.0.0.1:PORT/0 (default: in-memory)")
    ap.add_argument("--hold", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_project.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(48))  # no built-in key
    os.environ["HUB_CHANNELS"] = json.dumps(
        {"bench": {"subscribe": "anyone", "publish": "anyone", "history": 0}})
    os.environ["HUB_REQUIRE_AUTH"] = "false"
    os.environ["REDIS_URL"] = args.redis or ""
    import django

    django.setup()

    if args.hold is not None:
        asyncio.run(hold(args.hold))
        return

    async def run_all():
        res = []
        for n in [int(x) for x in args.sizes.split(",")]:
            rec = await measure(n, args.reps)
            rec["backend"] = "redis" if args.redis else "memory"
            rec["where"] = "same process"
            res.append(rec)
        if args.redis:
            for n in [int(x) for x in args.sizes.split(",")]:
                rec = await measure_remote(n, args.reps, args.redis)
                rec["backend"] = "redis"
                rec["where"] = "subscribers in another process"
                res.append(rec)
        return res

    for rec in asyncio.run(run_all()):
        print(json.dumps(rec))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
