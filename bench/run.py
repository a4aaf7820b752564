"""Fan-out benchmarks (GitHub issue 7), one command:

    .venv/bin/python -m bench.run --scenario all            # ~15 min
    .venv/bin/python -m bench.run --scenario all --quick    # ~3 min, smaller N
    .venv/bin/python -m bench.run --scenario fanout --servers hub-daphne,websockets
    .venv/bin/python -m bench.run --scenario fanout --servers hub-daphne --quick --daphne-fallback
    .venv/bin/python -m bench.run --scenario fanout,idle --servers hub-daphne,hub-daphne-fallback,socketio,raw-asyncio

Scenarios (``--scenario`` takes a comma list):
  ceiling     the load tool's own limit against a trivial raw-asyncio server that blasts
  fanout      (a) N = 1,000 and 5,000 subscribers of one channel, 20 publications/s for 10 s
              (every server in --servers; hub-uvicorn is scenario (f))
  saturation  (b) N = 1,000, publications as fast as the server takes them (10 s)
  idle        (c) memory per idle connection at 10,000 connections, held, then still delivering
  cluster     (d) two hub daphne processes + Redis, subscribers split, publisher on one of them
  connect     (e) connect rate (as fast as possible), and 500 connects/s against a hub on Redis
              while watching Redis' client count (issue 3)
  layer       issue 3: publisher's cost of channels-redis group_send, core vs pubsub layer

Every server, Redis included, is started here on a free 127.0.0.1 port and stopped by PID.
Results: one JSON object per line in bench/results/<UTC time>.jsonl (and --out); a markdown
table on stdout (``python -m bench.report FILE`` rebuilds it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from bench import procs
from bench.loadtool import SubscriberPool, Target, publish_and_count, run_fanout

RESULTS = Path(__file__).resolve().parent / "results"
ALL = ["ceiling", "fanout", "saturation", "idle", "cluster", "connect", "layer"]
HOST = "127.0.0.1"


class Run:
    def __init__(self, args) -> None:
        self.args = args
        self.quick = args.quick
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.run_id = stamp
        RESULTS.mkdir(exist_ok=True)
        self.path = Path(args.out) if args.out else RESULTS / f"{stamp}{'-quick' if args.quick else ''}.jsonl"
        self.results: list[dict] = []
        self.deadline = time.monotonic() + args.budget
        self.profile_dir = Path(args.profile) if args.profile else None
        self.meta = {"run_id": self.run_id, "git": procs.git_rev(), "quick": self.quick,
                     "machine": procs.machine(), "versions": procs.versions(),
                     "command": " ".join(["python -m bench.run"] + sys.argv[1:]),
                     "daphne_fast_path": os.environ.get("HUB_DAPHNE_FAST_PATH", "on")}
        self.emit({"scenario": "meta", **self.meta})

    def emit(self, rec: dict) -> None:
        rec.setdefault("run_id", self.run_id)
        rec.setdefault("utc", datetime.now(timezone.utc).isoformat(timespec="seconds"))
        self.results.append(rec)
        with open(self.path, "a") as f:
            f.write(json.dumps(rec, default=str) + "\n")
        if rec.get("scenario") != "meta":
            print(summary_line(rec), flush=True)

    def time_left(self) -> float:
        return self.deadline - time.monotonic()


def summary_line(r: dict) -> str:
    keys = ("scenario", "server", "subs", "published", "acked", "unconfirmed", "deliveries_per_s", "lost",
            "in_flight_at_cutoff", "dups",
            "lat_p50_ms", "lat_p99_ms", "ack_p99_ms", "server_cpu_s", "client_cpu_s",
            "others_cpu_s", "rss_per_conn_kb", "connects_per_s", "error")
    return " ".join(f"{k}={r[k]}" for k in keys if k in r and r[k] is not None)


class Machine:
    """Whole-machine busy CPU seconds over an interval (to spot other load on the box)."""

    def __init__(self) -> None:
        self.t0 = self._busy()

    @staticmethod
    def _busy() -> float:
        with open("/proc/stat") as f:
            parts = [int(x) for x in f.readline().split()[1:]]
        idle = parts[3] + parts[4]
        return (sum(parts[:8]) - idle) / procs.CLK_TCK

    def busy(self) -> float:
        return self._busy() - self.t0


class Profiler:
    """py-spy record on a server process from the first publication on (--profile DIR)."""

    def __init__(self, run: Run, pid: int, name: str, seconds: float) -> None:
        self.proc = None
        self.run, self.pid, self.name, self.seconds = run, pid, name, seconds
        self.out = run.profile_dir / f"{name}.txt" if run.profile_dir else None

    def start(self) -> None:
        if self.out is None or self.proc is not None:
            return
        self.out.parent.mkdir(parents=True, exist_ok=True)
        exe = Path(sys.executable).with_name("py-spy")
        if not exe.exists():  # py-spy installed elsewhere (bench/requirements.txt): on PATH
            exe = Path(shutil.which("py-spy") or exe)
        self.proc = subprocess.Popen(
            [str(exe), "record", "--pid", str(self.pid), "--duration", str(int(self.seconds)),
             "--rate", "250", "--format", "raw", "--nonblocking", "-o", str(self.out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait(self) -> None:
        if self.proc is not None:
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                self.proc.wait(5)


def measured(run: Run, scenario: str, server_name: str, servers: list, fn, extra_procs=(),
             prof: Profiler | None = None) -> dict:
    """Run ``fn()`` (-> result dict) while measuring server CPU, RSS and machine load.
    ``prof`` (started by ``fn`` through ``on_go``) is waited for here."""
    cpu0 = {s.pid: s.cpu() for s in list(servers) + list(extra_procs)}
    machine = Machine()
    t0 = time.monotonic()
    try:
        rec = fn()
    except Exception as exc:  # one failed scenario must not stop the run
        rec = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    wall = time.monotonic() - t0
    if prof is not None:
        prof.wait()
    server_cpu = sum(s.cpu() - cpu0[s.pid] for s in servers if s.alive())
    extra_cpu = sum(p.cpu() - cpu0[p.pid] for p in extra_procs if p.alive())
    busy = machine.busy()
    rec = {"scenario": scenario, "server": server_name, **rec}
    rec["server_cpu_s"] = round(server_cpu, 2)
    if extra_procs:
        rec["redis_cpu_s"] = round(extra_cpu, 2)
    rec["server_rss_mb"] = round(sum(s.rss() for s in servers if s.alive()) / 2**20, 1)
    own = server_cpu + extra_cpu + rec.get("client_cpu_s", 0) + rec.get("publisher_cpu_s", 0)
    rec["machine_busy_s"] = round(busy, 2)
    rec["others_cpu_s"] = round(max(0.0, busy - own), 2)  # load not from this bench's processes
    rec["measure_wall_s"] = round(wall, 1)
    if rec.get("deliveries"):
        rec["server_us_per_delivery"] = round(server_cpu / rec["deliveries"] * 1e6, 2)
    if prof is not None and prof.proc is not None:
        rec["profile"] = str(prof.out)
    if "server" not in rec or rec["server"] != server_name:
        rec["server"] = server_name
    return rec


def path(kind: str) -> str:
    return procs.ws_path(kind)


def needs_redis(kind: str) -> bool:
    return kind == "vanilla-channels"


class Servers:
    """Start one server kind (and Redis when it needs one); stop both at exit."""

    def __init__(self, kind: str, redis: bool = False, extra_env: dict | None = None) -> None:
        self.redis = procs.start_redis() if (redis or needs_redis(kind)) else None
        url = f"redis://{HOST}:{self.redis.port}/0" if self.redis else None
        try:
            self.server = procs.start_server(kind, redis_url=url, extra_env=extra_env)
        except BaseException:
            if self.redis:
                self.redis.stop()
            raise
        self.redis_url = url

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.server.stop()
        if self.redis:
            self.redis.stop()

    @property
    def extra(self):
        return [self.redis] if self.redis else []


# ------------------------------------------------------------------------------------------


def sc_ceiling(run: Run) -> None:
    n = 500 if run.quick else 1000
    count = 300 if run.quick else 1000
    with Servers("raw-asyncio") as s:
        # The last row: the Python receive loop the workers fall back to without a compiler.
        for procs_n, batch, python_rx in ((1, 50, False), (2, 50, False), (1, 1, False),
                                          (1, 1, True)):
            def fn():
                return run_fanout([Target(HOST, s.server.port, "/ws/", n)], Target(HOST, s.server.port),
                                  mode="blast", count=count, batch=batch, procs=procs_n)
            if python_rx:
                os.environ["BENCH_PYTHON_RX"] = "1"  # inherited by the spawned workers
            try:
                rec = measured(run, "ceiling", "raw-asyncio (blast)", [s.server], fn)
            finally:
                os.environ.pop("BENCH_PYTHON_RX", None)
            rec.update({"client_procs": procs_n, "batch": batch})
            if rec.get("deliveries"):
                rec["client_us_per_delivery"] = round(rec["client_cpu_s"] / rec["deliveries"] * 1e6, 2)
            run.emit(rec)


def sc_fanout(run: Run) -> None:
    sizes = [200, 1000] if run.quick else [1000, 5000]
    duration = 3 if run.quick else 10
    for kind in run.args.servers:
        for n in sizes:
            if run.time_left() < 60:
                run.emit({"scenario": "fanout", "server": kind, "subs_wanted": n,
                          "error": "skipped: over the time budget"})
                continue
            try:
                with Servers(kind) as s:
                    prof = Profiler(run, s.server.pid, f"fanout-{kind}-{n}", duration)

                    def fn():
                        return run_fanout([Target(HOST, s.server.port, path(kind), n)],
                                          Target(HOST, s.server.port, path(kind)), mode="paced", rate=20,
                                          duration=duration, procs=run.args.procs,
                                          max_wait=20 if kind != "vanilla-channels" else 10,
                                          on_go=prof.start)
                    rec = measured(run, "fanout", kind, [s.server], fn, s.extra, prof)
                    rec.update({"rate": 20, "duration": duration})
                    run.emit(rec)
            except Exception as exc:
                run.emit({"scenario": "fanout", "server": kind, "subs_wanted": n,
                          "error": f"{type(exc).__name__}: {exc}"[:300]})


def sc_saturation(run: Run) -> None:
    n = 500 if run.quick else 1000
    duration = 4 if run.quick else 10
    for kind in run.args.servers:
        if run.time_left() < 45:
            run.emit({"scenario": "saturation", "server": kind, "error": "skipped: over the time budget"})
            continue
        try:
            with Servers(kind) as s:
                prof = Profiler(run, s.server.pid, f"saturation-{kind}", duration)

                def fn():
                    return run_fanout([Target(HOST, s.server.port, path(kind), n)],
                                      Target(HOST, s.server.port, path(kind)), mode="window",
                                      window=run.args.window, duration=duration,
                                      procs=run.args.procs,
                                      max_wait=20 if kind != "vanilla-channels" else 10,
                                      on_go=prof.start)
                rec = measured(run, "saturation", kind, [s.server], fn, s.extra, prof)
                rec.update({"window": run.args.window, "duration": duration})
                run.emit(rec)
        except Exception as exc:
            run.emit({"scenario": "saturation", "server": kind,
                      "error": f"{type(exc).__name__}: {exc}"[:300]})


def sc_idle(run: Run) -> None:
    n = 2000 if run.quick else 10000
    warm = 50
    # Memory: the hub under both servers and the plain websockets peer (experiments and the
    # vanilla peer, which cannot hold 10,000 sockets on one layer channel each, are skipped).
    kinds = [k for k in run.args.servers if k in ("hub-daphne", "hub-daphne-fallback", "hub-uvicorn",
                                                   "websockets", "socketio", "raw-asyncio")]
    if run.quick:
        kinds = kinds[:1]
    for kind in kinds:
        if run.time_left() < 60:
            run.emit({"scenario": "idle", "server": kind, "error": "skipped: over the time budget"})
            continue
        try:
            with Servers(kind) as s:
                def fn():
                    port = s.server.port
                    with SubscriberPool([Target(HOST, port, path(kind), warm)], "bench", procs=1):
                        time.sleep(1.0)
                        rss0 = s.server.rss()
                        fds0 = procs.num_fds(s.server.pid)
                        with SubscriberPool([Target(HOST, port, path(kind), n)], "bench",
                                            procs=max(2, run.args.procs), concurrency=200) as pool:
                            conn = pool.connect_summary()
                            time.sleep(3.0)
                            rss1 = s.server.rss()
                            fds1 = procs.num_fds(s.server.pid)
                            hold = 5 if run.quick else 15
                            time.sleep(hold)
                            st = pool.status()
                            rss2 = s.server.rss()
                            res = publish_and_count(pool, Target(HOST, port, path(kind)), mode="paced", rate=2,
                                                    duration=1.5, max_wait=30)
                    out = {"subs_wanted": n, **conn, "hold_s": hold, "open_after_hold": st["open"],
                           "closes_during_hold": st["closes"],
                           "rss_before_mb": round(rss0 / 2**20, 1),
                           "rss_after_mb": round(rss1 / 2**20, 1),
                           "rss_after_hold_mb": round(rss2 / 2**20, 1),
                           "rss_per_conn_kb": round((max(rss1, rss2) - rss0) / max(1, conn["connected"]) / 1024, 2),
                           "server_fds": fds1 - fds0}
                    for k in ("published", "acked", "deliveries", "lost", "in_flight_at_cutoff", "dups", "lat_p50_ms",
                              "lat_p99_ms", "closes", "errors"):
                        out[f"{k}" if k not in ("closes", "errors") else f"final_{k}"] = res.get(k)
                    out["subs"] = res.get("subs")
                    out["client_cpu_s"] = res.get("client_cpu_s")
                    return out
                rec = measured(run, "idle", kind, [s.server], fn, s.extra)
                run.emit(rec)
        except Exception as exc:
            run.emit({"scenario": "idle", "server": kind, "error": f"{type(exc).__name__}: {exc}"[:300]})


def sc_cluster(run: Run) -> None:
    sizes = [1000] if run.quick else [1000, 5000]
    duration = 3 if run.quick else 10
    for n in sizes:
        if run.time_left() < 60:
            run.emit({"scenario": "cluster", "server": "hub-daphne x2 + redis", "subs_wanted": n,
                      "error": "skipped: over the time budget"})
            continue
        redis = procs.start_redis()
        url = f"redis://{HOST}:{redis.port}/0"
        servers = []
        try:
            # Baseline: the same N on one daphne process that also goes through Redis.
            a = procs.start_server("hub-daphne", redis_url=url, name="hub-a")
            servers.append(a)

            prof_a = Profiler(run, a.pid, f"cluster-hub-a-single-{n}", duration)

            def one():
                return run_fanout([Target(HOST, a.port, "/ws/", n, "single")], Target(HOST, a.port),
                                  mode="paced", rate=20, duration=duration, procs=run.args.procs,
                                  on_go=prof_a.start)
            rec = measured(run, "cluster", "hub-daphne x1 + redis", [a], one, [redis], prof_a)
            rec.update({"rate": 20, "duration": duration})
            run.emit(rec)
            b = procs.start_server("hub-daphne", redis_url=url, name="hub-b")
            servers.append(b)

            prof = Profiler(run, b.pid, f"cluster-hub-b-{n}", duration)

            def two():
                return run_fanout([Target(HOST, a.port, "/ws/", n // 2, "same-server"),
                                   Target(HOST, b.port, "/ws/", n - n // 2, "cross-server")],
                                  Target(HOST, a.port), mode="paced", rate=20, duration=duration,
                                  procs=run.args.procs, on_go=prof.start)
            rec = measured(run, "cluster", "hub-daphne x2 + redis", [a, b], two, [redis], prof)
            rec.update({"rate": 20, "duration": duration})
            for label, agg in (rec.get("by_target") or {}).items():
                rec[f"{label}_lat_p99_ms"] = agg.get("lat_p99_ms")
                rec[f"{label}_lat_p50_ms"] = agg.get("lat_p50_ms")
                rec[f"{label}_lost"] = agg.get("lost")
            run.emit(rec)
        except Exception as exc:
            run.emit({"scenario": "cluster", "server": "hub-daphne x2 + redis", "subs_wanted": n,
                      "error": f"{type(exc).__name__}: {exc}"[:300]})
        finally:
            for s in servers:
                s.stop()
            redis.stop()


class RedisWatch(threading.Thread):
    """Samples Redis' INFO clients every 0.2 s (our own watcher connection is subtracted)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        import redis

        self.r = redis.Redis.from_url(url)
        self.stop_flag = threading.Event()
        info = self.r.info()
        self.base_clients = info["connected_clients"] - 1
        self.base_total = info["total_connections_received"]
        self.max_clients = self.base_clients
        self.samples: list[int] = []

    def run(self) -> None:
        while not self.stop_flag.wait(0.2):
            try:
                c = self.r.info("clients")["connected_clients"] - 1
            except Exception:
                continue
            self.samples.append(c)
            self.max_clients = max(self.max_clients, c)

    def finish(self) -> dict:
        self.stop_flag.set()
        self.join(2)
        info = self.r.info()
        out = {"redis_clients_before": self.base_clients, "redis_clients_max": self.max_clients,
               "redis_clients_after": info["connected_clients"] - 1,
               "redis_connections_opened": info["total_connections_received"] - self.base_total - 0,
               "redis_rejected": info.get("rejected_connections", 0)}
        self.r.close()
        return out


def listen_drops() -> dict:
    """TcpExt ListenOverflows/ListenDrops: SYNs dropped because a listen backlog was full."""
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
        for head, vals in zip(lines[::2], lines[1::2]):
            if head.startswith("TcpExt:"):
                d = dict(zip(head.split()[1:], (int(v) for v in vals.split()[1:])))
                return {"ListenOverflows": d.get("ListenOverflows", 0), "ListenDrops": d.get("ListenDrops", 0)}
    except OSError:
        pass
    return {}


def sc_connect(run: Run) -> None:
    n = 500 if run.quick else 2000
    for kind in [k for k in run.args.servers if k not in procs.EXPERIMENTS]:
        if run.time_left() < 40:
            run.emit({"scenario": "connect", "server": kind, "error": "skipped: over the time budget"})
            continue
        try:
            with Servers(kind) as s:
                def fn():
                    d0 = listen_drops()
                    with SubscriberPool([Target(HOST, s.server.port, path(kind), n)], "bench",
                                        procs=run.args.procs, concurrency=100) as pool:
                        c = pool.connect_summary()
                    c["listen_overflows"] = listen_drops().get("ListenOverflows", 0) - d0.get("ListenOverflows", 0)
                    c["connects_per_s"] = round(c["connected"] / c["connect_elapsed_s"], 1)
                    c["mode"] = "as fast as possible, 100 in flight, connect+subscribe"
                    return c
                run.emit(measured(run, "connect", kind, [s.server], fn, s.extra))
        except Exception as exc:
            run.emit({"scenario": "connect", "server": kind, "error": f"{type(exc).__name__}: {exc}"[:300]})
    # Issue 3: a hub on Redis under 500 connects/s; how many Redis clients does it open?
    if run.time_left() < 40:
        return
    seconds = 4 if run.quick else 10
    for kind in ("hub-daphne", "hub-uvicorn"):
        if kind not in run.args.servers:
            continue
        try:
            with Servers(kind, redis=True) as s:
                def fn():
                    d0 = listen_drops()
                    watch = RedisWatch(s.redis_url)
                    watch.start()
                    with SubscriberPool([Target(HOST, s.server.port, "/ws/", 500 * seconds)], "bench",
                                        procs=run.args.procs, concurrency=400,
                                        connect_rate=500) as pool:
                        c = pool.connect_summary()
                        time.sleep(1)
                        c.update(watch.finish())
                    c["listen_overflows"] = listen_drops().get("ListenOverflows", 0) - d0.get("ListenOverflows", 0)
                    c["connects_per_s"] = round(c["connected"] / c["connect_elapsed_s"], 1)
                    c["mode"] = "paced 500/s, connect+subscribe, hub on Redis"
                    return c
                run.emit(measured(run, "connect-redis", kind, [s.server], fn, s.extra))
        except Exception as exc:
            run.emit({"scenario": "connect-redis", "server": kind,
                      "error": f"{type(exc).__name__}: {exc}"[:300]})


def sc_layer(run: Run) -> None:
    from bench.layer_cost import measure_all

    redis = procs.start_redis()
    url = f"redis://{HOST}:{redis.port}/0"
    try:
        sizes = [1, 1000, 5000] if not run.quick else [1, 1000]
        try:
            for rec in asyncio.run(measure_all(url, sizes, reps=10 if run.quick else 20)):
                run.emit({"scenario": "layer", "server": "channels-redis", **rec})
        except Exception as exc:
            run.emit({"scenario": "layer", "server": "channels-redis",
                      "error": f"{type(exc).__name__}: {exc}"[:300]})
        # The hub's own publish() cost vs local subscribers (memory; Redis, same and other process).
        sizes_s = ",".join(str(n) for n in ([0, 1000, 5000] if not run.quick else [0, 1000]))
        for extra in ([], ["--redis", url]):
            cmd = [procs.PY, "-m", "bench.publish_cost", "--sizes", sizes_s,
                   "--reps", "20" if run.quick else "50", *extra]
            env = dict(os.environ, **procs.hub_env(url if extra else None))
            try:
                out = subprocess.run(cmd, cwd=procs.ROOT, env=env, capture_output=True, text=True,
                                     timeout=300)
                lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
                if not lines:
                    raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "no output")
                for ln in lines:
                    run.emit({"scenario": "publish-cost", "server": "hub publish()", **json.loads(ln)})
            except Exception as exc:
                run.emit({"scenario": "publish-cost", "server": "hub publish()",
                          "error": f"{type(exc).__name__}: {exc}"[:300]})
    finally:
        redis.stop()


SCENARIO_FNS = {"ceiling": sc_ceiling, "fanout": sc_fanout, "saturation": sc_saturation,
                "idle": sc_idle, "cluster": sc_cluster, "connect": sc_connect, "layer": sc_layer}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="all", help=f"comma list of {ALL} or 'all'")
    ap.add_argument("--servers", default=",".join(procs.SERVERS),
                    help=f"comma list of {','.join(procs.SERVERS)}")
    ap.add_argument("--quick", action="store_true", help="small N, short runs (~3 min for all)")
    ap.add_argument("--procs", type=int, default=2, help="subscriber worker processes")
    ap.add_argument("--window", type=int, default=20, help="saturation: publications in flight")
    ap.add_argument("--budget", type=float, default=1200, help="seconds; later scenarios are skipped")
    ap.add_argument("--profile", metavar="DIR", help="py-spy record each server while it publishes "
                    "(fanout, saturation, cluster); summarise with python -m bench.profile_summary")
    ap.add_argument("--out", help="JSONL path (default bench/results/<time>.jsonl)")
    ap.add_argument("--daphne-fallback", action="store_true",
                    help="hub servers run the daphne seam's stock-ASGI fallback "
                         "(HUB_DAPHNE_FAST_PATH=off, inherited by every server started)")
    args = ap.parse_args(argv)
    if args.daphne_fallback:
        os.environ["HUB_DAPHNE_FAST_PATH"] = "off"
    scenarios = ALL if args.scenario == "all" else [s.strip() for s in args.scenario.split(",")]
    unknown = set(scenarios) - set(ALL)
    if unknown:
        ap.error(f"unknown scenario(s): {sorted(unknown)}")
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    bad = set(args.servers) - set(procs.SERVERS) - set(procs.EXPERIMENTS)
    if bad:
        ap.error(f"unknown server(s): {sorted(bad)}")
    # Stop cleanly (servers stopped by PID in ``finally`` blocks) on TERM, and on INT even
    # when started in the background (where the shell leaves SIGINT ignored).
    def _stop(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass
    os.environ.setdefault("BENCH_LOG_DIR", str(procs.log_dir()))
    run = Run(args)
    print(f"bench run {run.run_id}: {scenarios} on {args.servers}; results -> {run.path}; "
          f"logs -> {procs.log_dir()}", flush=True)
    for name in scenarios:
        if run.time_left() <= 0:
            run.emit({"scenario": name, "error": "skipped: over the time budget"})
            continue
        t0 = time.monotonic()
        SCENARIO_FNS[name](run)
        print(f"# {name} took {time.monotonic() - t0:.0f}s", flush=True)
    from bench.report import render

    print()
    print(render(run.results))


if __name__ == "__main__":
    main()
