"""REST broadcast at integration speed (issue 12): requests/s and latency of
``POST /api/broadcast`` against a real daphne, embedded and with Redis, beside a floor peer
in the same process (``bench/rest_floor.py``: a route doing only the publish), the DRF view
alone (the road before the lean route), the list body (publications/s), and the Slurm
monitor's HTTP sink one request per event vs one batch per poll.

    python -m bench.rest_broadcast                      # everything, ~3 minutes
    python -m bench.rest_broadcast --seconds 3 --backends embedded
    python -m bench.rest_broadcast --seconds 4 --concurrency 16 --skip-drf   # the targets only

For Redis rows ``redis_script_calls`` counts the engine's round trips (EVALSHA) during the
row: publications made in one event-loop turn share one (hub.engine.coalesce).

The load client is cheap on purpose: raw asyncio HTTP/1.1 with keep-alive, one connection
per concurrent caller, the request bytes built once. Both share the machine with the server:
client CPU is reported next to the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time

from bench import procs

ROUTES = {"broadcast": "/api/broadcast", "floor": "/bench/floor"}


def make_token(env: dict) -> str:
    """A broadcaster (``hub.broadcast``) and its DRF token, in the bench's database."""
    script = ("import django; django.setup()\n"
              "from django.contrib.auth.models import Permission, User\n"
              "from rest_framework.authtoken.models import Token\n"
              "u, _ = User.objects.get_or_create(username='bench-svc')\n"
              "u.user_permissions.add(Permission.objects.get(codename='broadcast', content_type__app_label='hub'))\n"
              "print(Token.objects.get_or_create(user=u)[0].key)\n")
    full = {**os.environ, **env}
    return subprocess.run([procs.PY, "-c", script], cwd=procs.ROOT, env=full, check=True,
                          capture_output=True, text=True).stdout.strip().splitlines()[-1]


def request_bytes(port: int, path: str, token: str, body) -> bytes:
    data = json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Token {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data


async def caller(port: int, request: bytes, until: float, latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    clock = time.perf_counter
    try:
        while clock() < until:
            started = clock()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(clock() - started)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


async def load(port: int, request: bytes, concurrency: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors: list[int] = []
    cpu0, t0 = time.process_time(), time.perf_counter()
    until = t0 + seconds
    await asyncio.gather(*(caller(port, request, until, latencies, errors) for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    latencies.sort()
    n = len(latencies)
    return {"requests": n, "rps": round(n / wall, 1), "errors": len(errors),
            "first_error": errors[0] if errors else None,
            "p50_ms": round(latencies[n // 2] * 1000, 2) if n else None,
            "p99_ms": round(latencies[min(n - 1, int(n * 0.99))] * 1000, 2) if n else None,
            "client_cpu_s": round(time.process_time() - cpu0, 2)}


def script_calls(redis_port: int | None, reset: bool = False) -> int | None:
    """Redis script calls (EVALSHA) since the last reset: how many round trips the engine
    made for the requests (publications of one loop turn travel together)."""
    if redis_port is None:
        return None
    import redis as redis_sync

    client = redis_sync.Redis(port=redis_port)
    if reset:
        client.config_resetstat()
        return 0
    return client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)


def measure(server: procs.Proc, port: int, request: bytes, concurrency: int, seconds: float,
            redis_port: int | None = None) -> dict:
    asyncio.run(load(port, request, concurrency, 0.5))  # warm-up: connections, caches, the node
    cpu0 = server.cpu()
    script_calls(redis_port, reset=True)
    row = asyncio.run(load(port, request, concurrency, seconds))
    row["server_cpu_s"] = round(server.cpu() - cpu0, 2)
    # CPU per request: the figure other load on a shared machine does not change much
    row["server_cpu_us_per_req"] = round(row["server_cpu_s"] / max(1, row["requests"]) * 1e6)
    calls = script_calls(redis_port)
    if calls is not None:
        row["redis_script_calls"] = calls
    return row


def monitor_sink(url: str, token: str, events: int) -> list[dict]:
    """The monitor's HTTP sink: one request per event (the base Sink loop, as before) vs one
    list body per poll (HttpSink.publish_many). Client CPU is this process's (urllib)."""
    from slurm_monitor.sinks import HttpSink, Sink

    items = [("channel", "jobs", "job_state_changed", {"job_id": str(n), "state": "RUNNING"})
             for n in range(events)]
    rows = []
    for mode in ("per_event", "batch"):
        sink = HttpSink(url, token)
        cpu0, t0 = time.process_time(), time.perf_counter()
        outcomes = asyncio.run(Sink.publish_many(sink, items) if mode == "per_event" else sink.publish_many(items))
        wall = time.perf_counter() - t0
        failed = sum(isinstance(o, Exception) for o in outcomes)
        rows.append({"mode": mode, "events": events, "failed": failed, "requests": sink.requests_sent,
                     "events_per_s": round(events / wall, 1),
                     "client_cpu_us_per_event": round((time.process_time() - cpu0) / events * 1e6, 1)})
    return rows


def run_backend(backend: str, args, out: list[dict]) -> None:
    redis = procs.start_redis() if backend == "redis" else None
    redis_url = f"redis://127.0.0.1:{redis.port}/0" if redis else None
    extra = {"HUB_API_BROADCASTER_RATE_LIMIT": "100000000/min", "DJANGO_LOG_LEVEL": "WARNING"}
    env = procs.hub_env(redis_url, extra=extra)
    procs.migrate(env)
    token = make_token(env)
    servers = []
    redis_port = redis.port if redis else None
    try:
        port = procs.free_port()
        server = procs.Proc("hub-rest", [procs.PY, "-m", "hub.server", "-b", "127.0.0.1", "-p", str(port),
                                         "bench.rest_floor:application"], env=env, port=port).wait_ready(90)
        servers.append(server)
        one = {"channel": "bench", "message": {"type": "tick", "data": {"price": 101.25, "sym": "ABC"}}}
        for concurrency in args.concurrency:
            for route in ("floor", "broadcast"):
                row = measure(server, port, request_bytes(port, ROUTES[route], token, one), concurrency,
                              args.seconds, redis_port)
                out.append({"backend": backend, "route": route, "concurrency": concurrency, **row})
                print(json.dumps(out[-1]), flush=True)
        batch = [one] * 1000
        for concurrency in (1, 4):
            request = request_bytes(port, ROUTES["broadcast"], token, batch)
            row = measure(server, port, request, concurrency, args.seconds, redis_port)
            row["publications_per_s"] = round(row["rps"] * 1000, 1)
            out.append({"backend": backend, "route": "broadcast[1000]", "concurrency": concurrency, **row})
            print(json.dumps(out[-1]), flush=True)
        for row in monitor_sink(f"http://127.0.0.1:{port}", token, args.monitor_events):
            out.append({"backend": backend, "route": "monitor_sink", **row})
            print(json.dumps(out[-1]), flush=True)
        if args.skip_drf:
            return
        drf_port = procs.free_port()
        drf = procs.Proc("hub-drf", [procs.PY, "-m", "hub.server", "-b", "127.0.0.1", "-p", str(drf_port),
                                     "bench.rest_floor:drf_only"], env=env, port=drf_port).wait_ready(90)
        servers.append(drf)
        row = measure(drf, drf_port, request_bytes(drf_port, ROUTES["broadcast"], token, one), 16,
                      args.seconds, redis_port)
        out.append({"backend": backend, "route": "broadcast (DRF view only)", "concurrency": 16, **row})
        print(json.dumps(out[-1]), flush=True)
    finally:
        for proc in servers:
            proc.stop()
        if redis:
            redis.stop()


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 32])
    parser.add_argument("--backends", nargs="+", default=["embedded", "redis"], choices=["embedded", "redis"])
    parser.add_argument("--monitor-events", type=int, default=500)
    parser.add_argument("--skip-drf", action="store_true", help="no 'DRF view only' row (the before)")
    args = parser.parse_args(argv)
    out: list[dict] = []
    print(json.dumps({"machine": procs.machine(), "versions": procs.versions(),
                      "loadavg": os.getloadavg()}), flush=True)
    for backend in args.backends:
        run_backend(backend, args, out)
    print("\n| backend | route | conc. | req/s | p50 ms | p99 ms | errors | server CPU µs/req | "
          "client CPU s | Redis script calls |", file=sys.stderr)
    floors = {(r["backend"], r["concurrency"]): r["rps"] for r in out if r["route"] == "floor"}
    for r in out:
        if r["route"] != "monitor_sink":
            floor = floors.get((r["backend"], r["concurrency"]))
            ratio = f" ({r['rps'] / floor:.2f} of the floor)" if floor and r["route"] == "broadcast" else ""
            print(f"| {r['backend']} | {r['route']} | {r['concurrency']} | {r['rps']}{ratio} | {r['p50_ms']} | "
                  f"{r['p99_ms']} | {r['errors']} | {r['server_cpu_us_per_req']} | {r['client_cpu_s']} | "
                  f"{r.get('redis_script_calls', '-')} |", file=sys.stderr)
    return out


if __name__ == "__main__":
    main()
