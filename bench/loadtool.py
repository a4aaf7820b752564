"""The load tool: many WebSocket subscribers in a few worker processes, plus one publisher.

Library use (what ``bench.run`` does)::

    res = run_fanout([Target("127.0.0.1", 8000, "/ws/", 1000, "hub")],
                     publisher=Target("127.0.0.1", 8000, "/ws/", 0, "hub"),
                     mode="paced", rate=20, duration=10)

Command line (one run against a server that is already up)::

    python -m bench.loadtool --url ws://127.0.0.1:8000/ws/ --subs 1000 --rate 20 --duration 10

Every subscriber subscribes to one channel before the first publication. The publisher (its
own process) publishes with the protocol's ``publish`` frame, putting ``bseq`` (0, 1, 2...)
and ``bts`` (its ``time.time_ns()`` just before the write) first in ``data``. Each
subscriber socket records, per publication: latency = its receipt time - ``bts`` and whether
that ``bseq`` already arrived on this socket. At the end, for every socket:
lost = publications the server acknowledged (``published``) that never arrived there,
duplicates = arrivals of a ``bseq`` already seen there.

Modes of the publisher:
  paced   ``rate`` publications/s for ``duration`` s (late sends are not dropped: it catches up).
  window  as fast as the server takes them: at most ``window`` publications outstanding,
          counted against the publisher's own subscription to the channel (a publication
          is done when it came back to the publisher) and against ``published`` acks.
  blast   (trivial server only) one frame asks the server to write ``count`` publications,
          ``batch`` frames per socket write: measures this tool's own receive ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import select
import sys
import time
from array import array
from dataclasses import dataclass
from time import time_ns
from urllib.parse import urlparse

from bench import fastrx
from bench.wsproto import RecvStats, connect

CTX = mp.get_context("spawn")


@dataclass
class Target:
    host: str
    port: int
    path: str = "/ws/"
    subs: int = 0
    label: str = "server"


def _raise_nofile() -> None:
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


# ------------------------------------------------------------------------------------------
# Subscriber worker process
# ------------------------------------------------------------------------------------------


def subscriber_worker(pipe, cfg: dict) -> None:
    _raise_nofile()
    try:
        asyncio.run(_subscriber_main(pipe, cfg))
    except Exception as exc:  # report instead of dying silently
        try:
            pipe.send(("crash", repr(exc)))
        except Exception:
            pass
        raise


async def _subscriber_main(pipe, cfg: dict) -> None:
    host, port, path = cfg["host"], cfg["port"], cfg["path"]
    channel = cfg.get("channel")
    n = cfg["n"]
    timeout = cfg.get("timeout", 60.0)
    stats = RecvStats()
    clients = []
    connect_lat = array("q")
    failures: dict[str, int] = {}
    sem = asyncio.Semaphore(cfg.get("concurrency", 100))

    async def one() -> None:
        async with sem:
            t0 = time_ns()
            client = None
            try:
                client = await connect(host, port, path, stats, timeout=timeout)
                await asyncio.wait_for(client.welcome, timeout)
                if channel:
                    await client.request({"type": "subscribe", "channel": channel}, "subscribed",
                                         timeout)
                connect_lat.append(time_ns() - t0)
                clients.append(client)
            except Exception as exc:
                why = f"{type(exc).__name__}: {exc}"[:120]
                failures[why] = failures.get(why, 0) + 1
                if client is not None:
                    client.abort()

    cpu0 = _cpu()
    t_start = time.monotonic()
    rate = cfg.get("connect_rate")  # connects/s for this worker, or None = as fast as possible
    if rate:
        tasks = []
        for i in range(n):
            delay = t_start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    else:
        await asyncio.gather(*(one() for _ in range(n)))
    connect_elapsed = time.monotonic() - t_start

    pipe.send(("ready", {
        "connected": len(clients), "failures": failures, "connect_elapsed": connect_elapsed,
        "connect_lat": connect_lat.tobytes(), "cpu": _cpu() - cpu0,
    }))
    # The receive phase runs on a bare epoll loop (see _receive_loop); asyncio only comes
    # back to close the sockets.
    _receive_loop(pipe, clients, stats, cpu0)
    for c in clients:
        c.close()
    await asyncio.sleep(0.2)
    for c in clients:
        c.abort()
    pipe.send(("closed", None))


def _receive_loop(pipe, clients: list, stats: RecvStats, cpu0: float) -> None:
    """Receive on every socket with a plain level-triggered epoll until told to close.

    asyncio's per-readiness machinery (selector event -> Handle -> callback -> recv) costs
    ~3x what the parse does; here readiness goes straight to a read. With a C compiler the
    whole loop runs in C (``bench/fastrx.c``: it counts publication frames and hands every
    other byte to the socket's ``data_received``); without one, in Python: ``os.read`` and
    ``data_received``. Sockets stay owned by their asyncio transports (reading paused), and
    small writes (pongs) still go through ``transport.write``, which sends at once.
    """
    ep = select.epoll()
    handlers = {}
    for c in clients:
        if c.closed.done():
            continue
        c.transport.pause_reading()
        fd = c.transport.get_extra_info("socket").fileno()
        c.rx_fd = fd
        handlers[fd] = c
        ep.register(fd, select.EPOLLIN)
    pfd = pipe.fileno()
    ep.register(pfd, select.EPOLLIN)
    lib = fastrx.load() if handlers else None
    rx = fastrx.FastRx(lib, max(handlers)) if lib is not None else None
    read = os.read
    finishing = None  # the "finish" command's arguments while waiting for deliveries

    def on_data(fd: int, data: bytes) -> None:
        c = handlers.get(fd)
        if c is None:
            return
        if data:
            c.data_received(data)
            if rx is not None:
                rx.slow[fd] = 1 if c.buf else 0  # a partial frame: Python reads on
        else:
            ep.unregister(fd)
            del handlers[fd]
            c.connection_lost(None)

    def totals() -> tuple[int, int]:
        if rx is None:
            return stats.deliveries, stats.distinct
        return stats.deliveries + rx.state.deliveries, stats.distinct + rx.state.distinct

    def command() -> bool:
        nonlocal finishing
        cmd, arg = pipe.recv()
        if cmd == "status":
            pipe.send(("status", {
                "open": sum(1 for c in clients if not c.closed.done()),
                "closes": dict(stats.closes), "deliveries": totals()[0],
                "heartbeats": stats.heartbeats}))
        elif cmd == "finish":
            accepted = arg["accepted"]
            finishing = {
                "accepted": accepted, "acked": arg["acked"],
                "want": len(clients) * sum(accepted),
                "t_end": time.monotonic() + arg["max_wait"], "quiet": arg["quiet"],
                "last": -1, "last_change": time.monotonic()}
        return cmd == "close"

    try:
        while True:
            if rx is not None:
                r = rx.run(ep.fileno(), pfd, 50)
                if r == fastrx.RUN_PYTHON:
                    on_data(rx.state.out_fd, rx.pending())
                elif r == fastrx.RUN_EOF:
                    on_data(rx.state.out_fd, b"")
                elif r == fastrx.RUN_COMMAND:
                    if command():
                        return
                elif r < 0:
                    raise OSError(-r, os.strerror(-r))
            else:
                for fd, _ in ep.poll(0.05):
                    if fd != pfd:
                        try:
                            data = read(fd, 262144)
                        except BlockingIOError:
                            continue
                        except OSError:
                            data = b""
                        on_data(fd, data)
                    elif command():
                        return
            if finishing is not None:
                f, now = finishing, time.monotonic()
                deliveries, distinct = totals()
                if deliveries != f["last"]:
                    f["last"], f["last_change"] = deliveries, now
                end = ("complete" if distinct >= f["want"] else
                       "quiet" if now - f["last_change"] > f["quiet"] else
                       "deadline" if now > f["t_end"] else None)
                if end is not None:
                    rep = _report(clients, stats, f["accepted"], f["acked"], cpu0, rx)
                    rep["end"] = end
                    pipe.send(("report", rep))
                    finishing = None
    finally:
        ep.close()
        for c in handlers.values():
            if not c.closed.done():
                c.transport.resume_reading()


def _report(clients: list, stats: RecvStats, accepted: bytes, acked: bytes, cpu0: float,
            rx: "fastrx.FastRx | None" = None) -> dict:
    """Per socket: which acknowledged publications never arrived (``missing``), how many
    publications sent but never acknowledged (nor refused) arrived anyway
    (``unconfirmed_delivered``), and any ``bseq`` that was not sent (``bogus``). Counts
    from the C receive loop (``rx``) and from Python's are added up."""
    acc = int.from_bytes(accepted, "little")
    a = int.from_bytes(acked, "little") & acc
    a_count = a.bit_count()
    missing = bogus = unconfirmed = 0
    for c in clients:
        s = int.from_bytes(c.seen, "little")
        if rx is not None and hasattr(c, "rx_fd"):
            s |= int.from_bytes(rx.seen_bytes(c.rx_fd), "little")
        both = (a & s).bit_count()
        in_acc = (acc & s).bit_count()
        missing += a_count - both
        unconfirmed += in_acc - both
        bogus += s.bit_count() - in_acc
    deliveries, distinct, dups = stats.deliveries, stats.distinct, stats.dups
    lats, dup_samples = stats.lats, list(stats.dup_samples)
    first_rx, last_rx = stats.first_rx, stats.last_rx
    if rx is not None:
        st = rx.state
        deliveries, distinct, dups = deliveries + st.deliveries, distinct + st.distinct, dups + st.dups
        lats = lats + rx.latencies()
        by_fd = {getattr(c, "rx_fd", None): c.client_id for c in clients}
        dup_samples += [(by_fd.get(fd), seq, ts) for fd, seq, ts in rx.dup_samples()]
        firsts = [t for t in (first_rx, st.first_rx) if t]
        first_rx = min(firsts) if firsts else 0
        last_rx = max(last_rx, st.last_rx)
    return {
        "subs": len(clients), "deliveries": deliveries, "distinct": distinct,
        "dups": dups, "missing": missing, "bogus": bogus,
        "unconfirmed_delivered": unconfirmed, "dup_samples": dup_samples[:20],
        "first_rx": first_rx, "last_rx": last_rx,
        "lats": lats.tobytes(), "closes": dict(stats.closes),
        "errors": dict(stats.errors), "heartbeats": stats.heartbeats,
        "open": sum(1 for c in clients if not c.closed.done()),
        "cpu": _cpu() - cpu0, "rx": "c" if rx is not None else "python",
        "rx_reads": rx.state.reads if rx is not None else None,
    }


# ------------------------------------------------------------------------------------------
# Publisher process
# ------------------------------------------------------------------------------------------


def publisher_worker(pipe, cfg: dict) -> None:
    try:
        asyncio.run(_publisher_main(pipe, cfg))
    except Exception as exc:
        try:
            pipe.send(("crash", repr(exc)))
        except Exception:
            pass
        raise


async def _publisher_main(pipe, cfg: dict) -> None:
    loop = asyncio.get_running_loop()
    host, port, path, channel = cfg["host"], cfg["port"], cfg["path"], cfg["channel"]
    mode = cfg["mode"]
    stats = RecvStats()  # the publisher's own subscription (window mode)
    sent_at: dict[int, int] = {}
    ack_rtt = array("q")
    acked = bytearray()
    refused: set[int] = set()  # publications answered with an error frame
    errors: dict[str, int] = {}
    wake = asyncio.Event()
    state = {"own_max": -1, "acks": 0, "blasted": None}

    def on_control(_client, obj) -> None:
        t = obj.get("type")
        if t == "published":
            i = obj.get("id")
            t0 = sent_at.pop(i, None)
            if t0 is not None:
                ack_rtt.append(time_ns() - t0)
                if i >= len(acked):
                    acked.extend(bytes(i + 1 - len(acked)))
                acked[i] = 1
                state["acks"] += 1
                wake.set()
        elif t == "blasted":
            state["blasted"] = obj
            wake.set()
        elif t == "error":
            code = str(obj.get("code"))
            errors[code] = errors.get(code, 0) + 1
            i = obj.get("id")
            if sent_at.pop(i, None) is not None:
                refused.add(i)
            wake.set()

    def on_pub(seq: int) -> None:
        if seq > state["own_max"]:
            state["own_max"] = seq
            wake.set()

    client = await connect(host, port, path, stats, on_control=on_control, on_pub=on_pub)
    await asyncio.wait_for(client.welcome, 30)
    if mode == "window":
        await client.request({"type": "subscribe", "channel": channel}, "subscribed")
    commands: asyncio.Queue = asyncio.Queue()
    loop.add_reader(pipe.fileno(), lambda: commands.put_nowait(pipe.recv()))
    pipe.send(("ready", None))
    cmd, _ = await commands.get()
    assert cmd == "go", cmd

    pad = cfg.get("pad", 0)
    pad_text = f',"pad":"{"x" * pad}"' if pad else ""
    pre, post = client.event_wrap("publish")
    head = f'{pre}{{"type":"publish","channel":"{channel}","event":"{cfg.get("event", "tick")}","id":'
    write = client.write_frame
    cpu0 = _cpu()
    first_send = time_ns()
    i = 0

    def send_one(seq: int) -> None:
        now = time_ns()
        sent_at[seq] = now
        write(f'{head}{seq},"data":{{"bseq":{seq},"bts":{now}{pad_text}}}}}{post}'.encode())

    stalled = False
    if mode == "paced":
        rate, total = cfg["rate"], int(cfg["rate"] * cfg["duration"])
        t0 = time.monotonic()
        for i in range(total):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            send_one(i)
        i = total
    elif mode == "window":
        window = cfg.get("window", 20)
        t_end = time.monotonic() + cfg["duration"]
        while time.monotonic() < t_end:
            if i - (state["own_max"] + 1) < window and i - state["acks"] - sum(errors.values()) < window:
                send_one(i)
                i += 1
                if i % 64 == 0:
                    await asyncio.sleep(0)  # let replies in
                continue
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), 10)
            except asyncio.TimeoutError:
                stalled = True
                break
    elif mode == "blast":
        count, batch = cfg["count"], cfg.get("batch", 50)
        client.send_json({"type": "blast", "channel": channel, "count": count, "batch": batch,
                          "pad": pad})
        t_end = time.monotonic() + 600
        while state["blasted"] is None and time.monotonic() < t_end:
            wake.clear()
            await asyncio.wait_for(wake.wait(), 600)
        acked = bytearray(b"\x01" * count)
        i = count
    last_send = time_ns()
    # Wait for the acks of everything sent (bounded).
    t_end = time.monotonic() + cfg.get("ack_wait", 30)
    while sent_at and mode != "blast" and time.monotonic() < t_end:
        wake.clear()
        try:
            await asyncio.wait_for(wake.wait(), 1)
        except asyncio.TimeoutError:
            pass
    cpu = _cpu() - cpu0
    accepted = bytearray(b"\x01" * i)  # sent and not refused: every subscriber must get these
    for r in refused:
        accepted[r] = 0
    pipe.send(("report", {
        "sent": i, "accepted": bytes(accepted), "refused": len(refused), "acked": bytes(acked), "n_acked": sum(acked), "ack_rtt": ack_rtt.tobytes(),
        "errors": errors, "first_send": first_send, "last_send": last_send, "cpu": cpu,
        "stalled": stalled, "unacked": len(sent_at) if mode != "blast" else 0,
        "closes": dict(stats.closes),
    }))
    cmd, _ = await commands.get()
    client.close()
    await asyncio.sleep(0.05)
    pipe.send(("closed", None))


# ------------------------------------------------------------------------------------------
# Orchestration (synchronous; runs in the parent process)
# ------------------------------------------------------------------------------------------


class Worker:
    def __init__(self, fn, cfg: dict) -> None:
        self.parent, child = CTX.Pipe()
        self.proc = CTX.Process(target=fn, args=(child, cfg), daemon=True)
        self.proc.start()
        child.close()
        self.cfg = cfg

    def expect(self, kind: str, timeout: float):
        if not self.parent.poll(timeout):
            raise TimeoutError(f"worker {self.proc.pid}: no {kind!r} within {timeout:.0f}s")
        msg, arg = self.parent.recv()
        if msg == "crash":
            raise RuntimeError(f"worker {self.proc.pid} crashed: {arg}")
        if msg != kind:
            raise RuntimeError(f"worker {self.proc.pid}: expected {kind!r}, got {msg!r}")
        return arg

    def send(self, cmd: str, arg=None) -> None:
        self.parent.send((cmd, arg))

    def stop(self) -> None:
        if self.proc.is_alive():
            try:
                self.send("close")
                self.expect("closed", 10)
            except Exception:
                pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)


def pct(sorted_vals, q: float):
    if not sorted_vals:
        return None
    k = min(len(sorted_vals) - 1, max(0, int(round(q / 100 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def lat_summary(raw: list[bytes], prefix: str = "lat") -> dict:
    vals = array("q")
    for b in raw:
        vals.frombytes(b)
    s = sorted(vals)
    out = {f"{prefix}_n": len(s)}
    for name, q in (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9)):
        v = pct(s, q)
        out[f"{prefix}_{name}_ms"] = None if v is None else round(v / 1e6, 3)
    out[f"{prefix}_max_ms"] = round(s[-1] / 1e6, 3) if s else None
    return out


def _split(n: int, k: int) -> list[int]:
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


class SubscriberPool:
    """Subscriber sockets spread over worker processes; use as a context manager."""

    def __init__(self, targets: list[Target], channel: str | None, procs: int = 2,
                 concurrency: int = 100, connect_rate: float | None = None,
                 timeout: float = 60.0) -> None:
        self.workers: list[tuple[str, Worker]] = []
        self.targets = targets
        per_target = max(1, procs // max(1, len(targets)))
        for t in targets:
            k = max(1, min(per_target, t.subs))
            for n in _split(t.subs, k):
                if n == 0:
                    continue
                cfg = {"host": t.host, "port": t.port, "path": t.path, "n": n, "channel": channel,
                       "concurrency": max(1, concurrency // k), "timeout": timeout,
                       "connect_rate": (connect_rate / (k * len(targets))) if connect_rate else None}
                self.workers.append((t.label, Worker(subscriber_worker, cfg)))
        self.ready = [w.expect("ready", timeout + t.subs / 50 + 60) for _, w in self.workers]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def connected(self) -> int:
        return sum(r["connected"] for r in self.ready)

    def connect_summary(self) -> dict:
        failures: dict[str, int] = {}
        for r in self.ready:
            for k, v in r["failures"].items():
                failures[k] = failures.get(k, 0) + v
        out = {"connected": self.connected, "connect_failures": sum(failures.values()),
               "connect_failure_kinds": failures,
               "connect_elapsed_s": round(max(r["connect_elapsed"] for r in self.ready), 3)}
        out.update(lat_summary([r["connect_lat"] for r in self.ready], "connect"))
        return out

    def status(self) -> dict:
        out = {"open": 0, "closes": {}, "deliveries": 0, "heartbeats": 0}
        for _, w in self.workers:
            w.send("status")
            s = w.expect("status", 30)
            out["open"] += s["open"]
            out["deliveries"] += s["deliveries"]
            out["heartbeats"] += s["heartbeats"]
            for k, v in s["closes"].items():
                out["closes"][k] = out["closes"].get(k, 0) + v
        return out

    def finish(self, accepted: bytes, acked: bytes, quiet: float,
               max_wait: float) -> list[tuple[str, dict]]:
        for _, w in self.workers:
            w.send("finish", {"accepted": accepted, "acked": acked, "quiet": quiet,
                              "max_wait": max_wait})
        return [(label, w.expect("report", max_wait + 60)) for label, w in self.workers]

    def stop(self) -> None:
        for _, w in self.workers:
            w.stop()


def aggregate(reports: list[dict], first_send: int, n_acked: int) -> dict:
    """Sum the workers' reports. Expected = subscribers x publications the server
    acknowledged (``published``). ``lost`` is only known once delivery stopped (everything
    sent arrived, or nothing arrived for ``quiet`` s); when the run hit its deadline while
    deliveries were still flowing, ``lost`` is None and ``in_flight_at_cutoff`` counts the
    acknowledged deliveries not there yet. Publications sent but never acknowledged by the
    end are reported by the publisher as ``unconfirmed`` (not counted as lost)."""
    out = {k: sum(r[k] for r in reports) for k in
           ("subs", "deliveries", "distinct", "dups", "missing", "bogus", "unconfirmed_delivered",
            "heartbeats")}
    out["expected"] = out["subs"] * n_acked
    ends = sorted({r["end"] for r in reports})
    out["end"] = ",".join(ends)
    out["drained"] = "deadline" not in ends
    out["lost"] = out["missing"] if out["drained"] else None
    out["in_flight_at_cutoff"] = 0 if out["drained"] else out["missing"]
    last_rx = max((r["last_rx"] for r in reports if r["last_rx"]), default=0)
    span = (last_rx - first_send) / 1e9 if last_rx else 0
    out["deliver_span_s"] = round(span, 3)
    out["deliveries_per_s"] = round(out["deliveries"] / span) if span > 0 else 0
    out.update(lat_summary([r["lats"] for r in reports]))
    closes: dict[str, int] = {}
    errors: dict[str, int] = {}
    for r in reports:
        for k, v in r["closes"].items():
            closes[k] = closes.get(k, 0) + v
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    out["closes"] = closes
    out["errors"] = errors
    samples = [x for r in reports for x in r.get("dup_samples", [])][:20]
    if samples:
        out["dup_samples"] = [{"client_id": c, "bseq": q, "rx_ns": t} for c, q, t in samples]
    out["client_cpu_s"] = round(sum(r["cpu"] for r in reports), 2)
    out["client_rx"] = ",".join(sorted({r.get("rx", "python") for r in reports}))
    return out


def run_fanout(targets: list[Target], publisher: Target, channel: str = "bench",
               procs: int = 2, concurrency: int = 100, **publish_kw) -> dict:
    """Connect and subscribe every target's subscribers, publish, wait for delivery, count."""
    t_begin = time.monotonic()
    with SubscriberPool(targets, channel, procs=procs, concurrency=concurrency) as pool:
        result = {"subs_wanted": sum(t.subs for t in targets)}
        result.update(pool.connect_summary())
        result.update(publish_and_count(pool, publisher, channel, **publish_kw))
    result["wall_s"] = round(time.monotonic() - t_begin, 1)
    return result


def publish_and_count(pool: SubscriberPool, publisher: Target, channel: str = "bench",
                      mode: str = "paced", rate: float = 20, duration: float = 10,
                      window: int = 20, count: int = 0, batch: int = 50, pad: int = 0,
                      quiet: float = 3.0, max_wait: float = 20.0, on_go=None) -> dict:
    """Run the publisher against an already subscribed pool, then collect the counts."""
    pub = Worker(publisher_worker, {
        "host": publisher.host, "port": publisher.port, "path": publisher.path,
        "channel": channel, "mode": mode, "rate": rate, "duration": duration,
        "window": window, "count": count, "batch": batch, "pad": pad, "ack_wait": max_wait})
    try:
        pub.expect("ready", 30)
        if on_go is not None:
            on_go()
        pub.send("go")
        prep = pub.expect("report", duration + 660 if mode == "blast" else duration + max_wait + 60)
        reports = pool.finish(prep["accepted"], prep["acked"], quiet, max_wait)
        n_acked = prep["n_acked"]
        span_pub = (prep["last_send"] - prep["first_send"]) / 1e9
        result = {
            "mode": mode, "published": prep["sent"], "acked": n_acked,
            "publish_errors": prep["errors"], "publisher_stalled": prep["stalled"],
            "unconfirmed": prep["unacked"], "refused": prep["refused"],
            "publish_rate": round(prep["sent"] / span_pub, 1) if span_pub > 0 else None,
            "publisher_cpu_s": round(prep["cpu"], 2),
        }
        result.update(lat_summary([prep["ack_rtt"]], "ack"))
        result.update(aggregate([r for _, r in reports], prep["first_send"], n_acked))
        labels = sorted({label for label, _ in reports})
        if len(labels) > 1:
            result["by_target"] = {
                label: aggregate([r for lb, r in reports if lb == label], prep["first_send"],
                                 n_acked)
                for label in labels}
        pub.send("close")
        pub.expect("closed", 10)
        return result
    finally:
        pub.stop()


def parse_url(url: str) -> tuple[str, int, str]:
    u = urlparse(url)
    if u.scheme != "ws":
        raise SystemExit("only ws:// URLs")
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")
    return u.hostname or "127.0.0.1", u.port or 80, path


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="ws://127.0.0.1:PORT/ws/ (subscribers)")
    ap.add_argument("--pub-url", help="publisher's URL (default: --url)")
    ap.add_argument("--subs", type=int, default=100)
    ap.add_argument("--channel", default="bench")
    ap.add_argument("--mode", choices=["paced", "window", "blast"], default="paced")
    ap.add_argument("--rate", type=float, default=20)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--window", type=int, default=20)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--pad", type=int, default=0)
    ap.add_argument("--procs", type=int, default=2)
    args = ap.parse_args(argv)
    host, port, path = parse_url(args.url)
    phost, pport, ppath = parse_url(args.pub_url or args.url)
    host_ok = {"127.0.0.1", "localhost"}
    if host not in host_ok or phost not in host_ok:
        raise SystemExit("the load tool only targets 127.0.0.1")
    res = run_fanout([Target(host, port, path, args.subs)], Target(phost, pport, ppath),
                     channel=args.channel, mode=args.mode, rate=args.rate,
                     duration=args.duration, window=args.window, count=args.count,
                     batch=args.batch, pad=args.pad, procs=args.procs)
    json.dump(res, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
