"""Slurm monitor end to end (issue 13): the simulated site, a real hub, real viewers.

    .venv/bin/python -m bench.slurm_e2e --size 1000x10000 --duration 120
    .venv/bin/python -m bench.slurm_e2e --size 10000x100000 --duration 120

Starts, on 127.0.0.1, a private Redis, the hub (daphne, ``python -m hub.server``) and
``manage.py run_slurm_monitor --mock --mock-size NODESxJOBS`` with the ``layer`` sink (the
production road when the hub and the monitor are separate processes: ``REDIS_URL`` set;
``--sink http`` instead: no Redis, the monitor posts to ``/api/broadcast``). The monitor runs
with ``SLURM_MONITOR_MOCK_TRACE`` (``slurm_monitor.mock_trace``): the simulator logs every
command, every step of churn (job id and new state) and every poll's end, with wall times
and the process's CPU. Everything started here is stopped by PID at the end.

Phase A: ``duration / 2`` seconds with no viewer. Phase B: ``--viewers`` WebSocket sockets
(anonymous: the hub runs with ``HUB_REQUIRE_AUTH=false``) subscribed to jobs, nodes and
metrics, for ``duration / 2`` seconds. Measured:

1. Slurm commands per minute in each phase, by command (they must not depend on viewers);
2. for every job event a viewer receives (``job_submitted``, ``job_state_changed``,
   ``job_removed``), matched by (job id, state) to the simulator's step that made it:
   ``detect`` = receipt - the step (the listing command that revealed the change: what the
   monitor and hub add), ``worst`` = receipt - the previous step (a change made just after the
   previous listing waits a whole interval: the figure the target "p99 <= one state-tier
   interval + 1 s" is about), and ``publish`` -> receipt (the event's ``timestamp``, set by
   ``hub.publish`` in the monitor: Redis + daphne's share);
3. per poll, the monitor's CPU (from the start of the poll's first command to its log line,
   the simulator's own CPU left out; ``overlap`` marks a poll during which the other stream
   ran a command too), by kind (state tier, full cycle, nodes); the monitor's peak RSS
   (VmHWM: the simulator's records included) and each process's CPU per phase.

``run(options)`` is the core (the smoke test calls it at a tiny size); ``main`` prints the
summary and writes it as JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from array import array
from datetime import datetime, timezone
from pathlib import Path

from bench import procs
from bench.loadtool import pct
from bench.wsproto import RecvStats, WSClient

RESULTS = Path(__file__).resolve().parent / "results"
CHANNELS = ["jobs", "nodes", "metrics"]
JOB_EVENTS = {"job_submitted", "job_state_changed", "job_removed"}


class TraceReader:
    """Tails the monitor's trace file; ``changed(job_id, state)`` -> (step time, previous step
    time) of the step that put the job in that state (the first one), or None."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.tail = path, 0, b""
        self.first: dict[tuple[str, str], int] = {}  # (job id, state) -> index into steps
        self.steps: list[float] = []
        self.cmds: list[dict] = []
        self.polls: list[dict] = []
        self.records: list[dict] = []  # cmd and poll records in file order

    def read(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        *lines, self.tail = (self.tail + data).split(b"\n")
        for line in lines:
            rec = json.loads(line)
            if rec["k"] == "step":
                index = len(self.steps)
                self.steps.append(rec["t"])
                for job_id, state in rec["changes"]:
                    self.first.setdefault((str(job_id), state), index)
                continue
            (self.cmds if rec["k"] == "cmd" else self.polls).append(rec)
            self.records.append(rec)

    def changed(self, job_id: str, state: str) -> tuple[float, float] | None:
        index = self.first.get((job_id, state))
        if index is None:
            self.read()
            index = self.first.get((job_id, state))
        if index is None:
            return None
        return self.steps[index], self.steps[index - 1] if index else self.steps[index]

    def jobs_polls(self) -> int:
        return sum(1 for p in self.polls if p["stream"] == "jobs")


class Client(WSClient):
    """A viewer's socket. A probe parses every frame (its job events are timed); any other
    socket, once subscribed, only reads and counts bytes, so the probes' figures are what one
    browser would see, not this process working through 100 copies of each burst."""

    probe = False
    drain = False
    received = 0

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if not self.drain:
            super().data_received(data)


class Viewers:
    """``count`` sockets subscribed to jobs, nodes and metrics; the first ``probes`` time
    every job event they get."""

    def __init__(self, trace: TraceReader) -> None:
        self.trace = trace
        self.stats = RecvStats()
        self.clients: list[Client] = []
        self.subscribed: dict[int, int] = {}
        self.detect, self.worst = array("d"), array("d")
        self.to_publish, self.to_socket = array("d"), array("d")
        self.events: dict[str, int] = {}
        self.uncorrelated = 0

    def on_frame(self, client: Client, obj: dict) -> None:
        kind = obj.get("type")
        if kind == "subscribed":
            self.subscribed[id(client)] = self.subscribed.get(id(client), 0) + 1
            client.drain = not client.probe and self.subscribed[id(client)] >= len(CHANNELS)
            return
        if obj.get("channel") not in CHANNELS:
            return
        now = time.time()
        self.events[kind] = self.events.get(kind, 0) + 1
        if kind not in JOB_EVENTS:
            return
        data = obj.get("data") or {}
        found = self.trace.changed(str(data.get("job_id")),
                                   "REMOVED" if kind == "job_removed" else str(data.get("state")))
        if found is None:
            self.uncorrelated += 1
            return
        step, previous = found
        self.detect.append(now - step)
        self.worst.append(now - previous)
        stamp = obj.get("timestamp")
        if stamp:
            published = datetime.fromisoformat(stamp).timestamp()
            self.to_publish.append(published - step)
            self.to_socket.append(now - published)

    async def open(self, port: int, count: int, probes: int, timeout: float = 60.0) -> None:
        loop = asyncio.get_running_loop()

        async def one(probe: bool) -> None:
            _, client = await loop.create_connection(
                lambda: Client("127.0.0.1", port, "/ws/", self.stats, self.on_frame), "127.0.0.1", port)
            client.probe = probe
            self.clients.append(client)
            await asyncio.wait_for(asyncio.shield(client.opened), timeout)
            await asyncio.wait_for(client.welcome, timeout)
            client.send_json({"type": "subscribe", "channels": CHANNELS})

        for start in range(0, count, 50):
            await asyncio.gather(*(one(start + i < probes) for i in range(min(50, count - start))))
        deadline = time.monotonic() + timeout
        while sum(1 for c in self.clients if self.subscribed.get(id(c), 0) >= len(CHANNELS)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"viewers not subscribed after {timeout}s: {self.stats.errors}")
            await asyncio.sleep(0.05)

    async def keep_alive(self) -> None:
        """Draining sockets answer no heartbeat: a ping now and then keeps them admitted."""
        while True:
            await asyncio.sleep(20)
            for client in self.clients:
                client.send_json({"type": "ping"})

    def received(self) -> dict:
        probes = sorted(c.received for c in self.clients if c.probe)
        drains = sorted(c.received for c in self.clients if not c.probe)
        return {"probe_median_bytes": probes[len(probes) // 2] if probes else None,
                "drain_median_bytes": drains[len(drains) // 2] if drains else None,
                "drain_min_bytes": drains[0] if drains else None}

    def close(self) -> None:
        for client in self.clients:
            client.close()


def latency(values: array) -> dict:
    ordered = sorted(values)
    return {"n": len(ordered), **{f"p{q}_s": round(pct(ordered, q), 3) if ordered else None
                                   for q in (50, 95, 99)},
            "max_s": round(ordered[-1], 3) if ordered else None}


def commands_per_minute(trace: TraceReader, start: float, end: float) -> dict:
    """Commands started in [start, end), by command; and the jobs polls that ended then, with
    the ``squeue`` calls per jobs poll (what a viewer could change, if anything could)."""
    counts: dict[str, int] = {}
    for cmd in trace.cmds:
        if start <= cmd["t0"] < end:
            counts[cmd["cmd"]] = counts.get(cmd["cmd"], 0) + 1
    polls = sum(1 for p in trace.polls if p["stream"] == "jobs" and start <= p["t"] < end)
    squeue = sum(n for name, n in counts.items() if name.startswith("squeue"))
    return {"seconds": round(end - start, 1), "total": sum(counts.values()),
            "per_minute": round(sum(counts.values()) / ((end - start) / 60), 1),
            "by_command": dict(sorted(counts.items())), "jobs_polls": polls,
            "squeue_per_jobs_poll": round(squeue / polls, 2) if polls else None}


FIRST_COMMAND = {"jobs": "squeue --only-job-state", "nodes": "scontrol show"}
OTHER = {"jobs": "nodes", "nodes": "jobs"}


def poll_costs(records: list[dict]) -> list[dict]:
    """Per poll: kind, wall seconds, the monitor's CPU (the simulator's left out), overlap."""
    out = []
    for index, rec in enumerate(records):
        if rec["k"] != "poll":
            continue
        stream = rec["stream"]
        start = next((i for i in range(index - 1, -1, -1) if records[i]["k"] == "cmd"
                      and records[i]["cmd"] == FIRST_COMMAND[stream]), None)
        if start is None:
            continue
        span = [r for r in records[start:index] if r["k"] == "cmd"]
        simulator = sum(r["cpu1"] - r["cpu0"] for r in span)
        overlap = any(r["cmd"] == FIRST_COMMAND[OTHER[stream]] for r in span)
        kind = "nodes" if stream == "nodes" else rec["msg"].split(" ")[2]  # "jobs poll: full tier"
        out.append({"stream": stream, "kind": kind, "t": rec["t"], "wall_s": round(rec["t"] - records[start]["t0"], 3),
                    "cpu_s": round(rec["cpu"] - records[start]["cpu0"] - simulator, 3),
                    "simulator_cpu_s": round(simulator, 3), "overlap": overlap, "msg": rec["msg"]})
    return out


def summarise_polls(polls: list[dict]) -> dict:
    """The first jobs and nodes polls are baselines (every row saved); the rest by kind."""
    out: dict = {}
    seen: set[str] = set()
    for poll in polls:
        key = poll["kind"] if poll["stream"] in seen else f"{poll['stream']} baseline"
        seen.add(poll["stream"])
        row = out.setdefault(key, {"n": 0, "cpu_s": [], "wall_s": [], "overlapped": 0})
        row["n"] += 1
        row["cpu_s"].append(poll["cpu_s"])
        row["wall_s"].append(poll["wall_s"])
        row["overlapped"] += poll["overlap"]
    for row in out.values():
        cpu = sorted(row["cpu_s"])
        row["cpu_median_s"], row["cpu_max_s"] = cpu[len(cpu) // 2], cpu[-1]
        row["wall_median_s"] = sorted(row["wall_s"])[len(row["wall_s"]) // 2]
    return out


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


async def wait_for(check, timeout: float, what: str, proc: procs.Proc) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if not proc.alive():
            raise RuntimeError(f"the monitor exited ({proc.popen.returncode}); see {proc.log_path}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} after {timeout}s; see {proc.log_path}")
        await asyncio.sleep(0.2)


async def measure(options: argparse.Namespace, hub: procs.Proc, monitor: procs.Proc,
                  trace: TraceReader) -> dict:
    """The two phases, once everything runs; returns the figures."""
    await wait_for(lambda: (trace.read(), trace.jobs_polls())[1] >= 1, options.startup_timeout,
                   "no baseline jobs poll", monitor)
    half = options.duration / 2
    pids = {"monitor": monitor.pid, "hub": hub.pid}
    cpu = {name: [procs.cpu_seconds(pid)] for name, pid in pids.items()}
    a0 = time.time()
    await asyncio.sleep(half)
    a1 = time.time()
    for name, pid in pids.items():
        cpu[name].append(procs.cpu_seconds(pid))
    viewers = Viewers(trace)
    await viewers.open(hub.port, options.viewers, options.probes)
    pinger = asyncio.create_task(viewers.keep_alive())
    for name, pid in pids.items():
        cpu[name].append(procs.cpu_seconds(pid))
    b0, client0 = time.time(), time.process_time()
    await asyncio.sleep(half)
    b1, client1 = time.time(), time.process_time()
    for name, pid in pids.items():
        cpu[name].append(procs.cpu_seconds(pid))
    pinger.cancel()
    received = viewers.received()
    viewers.close()
    trace.read()
    rss = peak_rss_mb(monitor.pid)
    polls = poll_costs(trace.records)
    return {
        "commands": {"no_viewers": commands_per_minute(trace, a0, a1),
                     "viewers": commands_per_minute(trace, b0, b1)},
        "viewers": {"count": len(viewers.clients), "probes": options.probes, "events_per_probe": {
                        kind: n // max(1, min(options.probes, len(viewers.clients))) for kind, n in viewers.events.items()},
                    "received": received,
                    "uncorrelated_job_events": viewers.uncorrelated, "closes": viewers.stats.closes,
                    "errors": viewers.stats.errors},
        "latency": {"detect": latency(viewers.detect), "worst": latency(viewers.worst),
                    "step_to_publish": latency(viewers.to_publish),
                    "publish_to_socket": latency(viewers.to_socket)},
        "target_s": options.jobs_interval + 1,
        "polls": summarise_polls(polls),
        "poll_log": polls,
        "monitor_peak_rss_mb": rss,
        "cpu_share": {name: {"no_viewers": round((c[1] - c[0]) / (a1 - a0), 3),
                             "viewers": round((c[3] - c[2]) / (b1 - b0), 3)} for name, c in cpu.items()}
        | {"viewer_client": {"viewers": round((client1 - client0) / (b1 - b0), 3)}},
    }


def run(options: argparse.Namespace) -> dict:
    """Start Redis (layer sink), the hub and the monitor; measure; stop them by PID."""
    started: list[procs.Proc] = []
    load_before = os.getloadavg()
    trace_path = procs.log_dir() / f"trace-{int(time.time() * 1000)}.jsonl"
    try:
        redis_url = None
        if options.sink == "layer":
            redis = procs.start_redis()
            started.append(redis)
            redis_url = f"redis://127.0.0.1:{redis.port}/0"
        hub = procs.start_server("hub-daphne", redis_url=redis_url, name="hub-slurm-e2e")
        started.append(hub)
        env = procs.hub_env(redis_url, "slurm-monitor", {
            "SLURM_MONITOR_MOCK_TRACE": str(trace_path), "SLURM_MONITOR_FULL_EVERY": str(options.full_every)})
        monitor = procs.Proc("monitor", [
            procs.PY, "manage.py", "run_slurm_monitor", "--mock", "--mock-size", options.size,
            "--seed", str(options.seed), "--sink", options.sink, "--hub-url", f"http://127.0.0.1:{hub.port}",
            "--jobs-interval", str(options.jobs_interval), "--nodes-interval", str(options.nodes_interval),
            "--metrics-interval", str(options.metrics_interval)], env=env)
        started.append(monitor)
        figures = asyncio.run(measure(options, hub, monitor, TraceReader(trace_path)))
    finally:
        for proc in reversed(started):
            proc.stop(30)
    return {"size": options.size, "sink": options.sink, "duration_s": options.duration,
            "jobs_interval_s": options.jobs_interval, "full_every": options.full_every,
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "monitor_log": str(started[-1].log_path) if started else "",
            "pids": {proc.name: proc.pid for proc in started}, **figures}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="1000x10000", help="NODESxJOBS of the simulated cluster")
    p.add_argument("--duration", type=float, default=120.0, help="seconds measured (half without viewers)")
    p.add_argument("--viewers", type=int, default=100)
    p.add_argument("--probes", type=int, default=5, help="viewers that parse and time every frame")
    p.add_argument("--sink", choices=("layer", "http"), default="layer")
    p.add_argument("--jobs-interval", type=float, default=5.0)
    p.add_argument("--nodes-interval", type=float, default=10.0)
    p.add_argument("--metrics-interval", type=float, default=15.0)
    p.add_argument("--full-every", type=int, default=12)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--startup-timeout", type=float, default=300.0)
    return p


def main() -> None:
    options = parser().parse_args()
    result = run(options)
    result.update(git=procs.git_rev(), utc=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  command="python -m bench.slurm_e2e " + " ".join(sys.argv[1:]))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"slurm-e2e-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=1))
    shown = {k: v for k, v in result.items() if k != "poll_log"}
    shown["polls"] = {kind: {k: v for k, v in row.items() if k not in ("cpu_s", "wall_s")}
                      for kind, row in result["polls"].items()}
    print(json.dumps(shown, indent=1))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
