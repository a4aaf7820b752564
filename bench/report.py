"""Markdown tables from a bench JSONL file: ``python -m bench.report bench/results/X.jsonl``."""

from __future__ import annotations

import json
import sys


def _fmt(v) -> str:
    if v is None or v == "":
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if abs(v) >= 100:
            return f"{v:,.0f}"
        return f"{v:g}"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {n}" for k, n in v.items()) or "-"
    return str(v)


def _table(rows: list[dict], cols: list[tuple[str, object]]) -> str:
    if not rows:
        return ""
    out = ["| " + " | ".join(h for h, _ in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for _, key in cols:
            v = key(r) if callable(key) else r.get(key)
            cells.append(_fmt(v))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def _err(r: dict) -> str:
    return r.get("error", "")


def _lost(r: dict):
    if r.get("lost") is None:
        if r.get("in_flight_at_cutoff"):
            return f"? ({r['in_flight_at_cutoff']:,} not delivered at cutoff, still flowing)"
        return None
    exp = r.get("expected") or 0
    pct = f" ({100 * r['lost'] / exp:.1f} %)" if exp and r["lost"] else ""
    return f"{r['lost']:,}{pct}"


def _rate(r: dict):
    return r.get("publish_rate")


FANOUT_COLS = [
    ("server", "server"), ("N", "subs"), ("published", "published"), ("pub/s", _rate),
    ("acked (unconfirmed)", lambda r: f"{_fmt(r.get('acked'))}" + (f" ({_fmt(r['unconfirmed'])})" if r.get("unconfirmed") else "")),
    ("deliveries/s", "deliveries_per_s"), ("lost", _lost), ("dup", "dups"),
    ("p50 ms", "lat_p50_ms"), ("p99 ms", "lat_p99_ms"), ("max ms", "lat_max_ms"),
    ("ack p50/p99 ms", lambda r: f"{_fmt(r.get('ack_p50_ms'))} / {_fmt(r.get('ack_p99_ms'))}"),
    ("server CPU s (µs/delivery)", lambda r: f"{_fmt(r.get('server_cpu_s'))} ({_fmt(r.get('server_us_per_delivery'))})"),
    ("client CPU s", "client_cpu_s"), ("others' CPU s", "others_cpu_s"),
    ("closes / errors", lambda r: _fmt({**(r.get("closes") or {}), **(r.get("errors") or {})})),
    ("note", _err),
]


def render(results: list[dict]) -> str:
    meta = next((r for r in results if r.get("scenario") == "meta"), None)
    parts = []
    if meta:
        m, v = meta["machine"], meta["versions"]
        parts.append(f"Run `{meta['run_id']}` (git {meta.get('git')}{', quick' if meta.get('quick') else ''}): "
                     f"{m.get('nproc')} CPUs ({m.get('cpu')}), {m.get('mem_gb')} GB, {m.get('os')}. "
                     + ", ".join(f"{k} {x}" for k, x in v.items()) + ".\n"
                     f"Command: `{meta.get('command')}`")
    by = lambda s: [r for r in results if r.get("scenario") == s]  # noqa: E731
    if by("ceiling"):
        parts.append("### Load tool ceiling (raw asyncio server blasting)\n\n" + _table(by("ceiling"), [
            ("client procs", "client_procs"), ("receive loop", "client_rx"),
            ("frames per server write", "batch"), ("N", "subs"),
            ("deliveries", "deliveries"), ("deliveries/s", "deliveries_per_s"), ("lost", _lost),
            ("client µs/delivery", "client_us_per_delivery"), ("others' CPU s", "others_cpu_s"),
            ("note", _err)]))
    if by("fanout"):
        parts.append("### (a) + (f) Fan-out: N subscribers, 20 publications/s\n\n" + _table(by("fanout"), FANOUT_COLS))
    if by("saturation"):
        parts.append("### (b) Saturation: N = 1,000, publications as fast as taken\n\n"
                     + _table(by("saturation"), FANOUT_COLS))
    if by("idle"):
        parts.append("### (c) Idle connections\n\n" + _table(by("idle"), [
            ("server", "server"), ("connected", "connected"), ("failures", "connect_failures"),
            ("open after hold", "open_after_hold"), ("hold s", "hold_s"),
            ("RSS before MB", "rss_before_mb"), ("RSS after MB", "rss_after_mb"),
            ("RSS after hold MB", "rss_after_hold_mb"), ("KB per connection", "rss_per_conn_kb"),
            ("then published", "published"), ("delivered", "deliveries"), ("lost", "lost"),
            ("p99 ms", "lat_p99_ms"), ("connect p99 ms", "connect_p99_ms"), ("note", _err)]))
    if by("cluster"):
        parts.append("### (d) Two daphne processes + Redis (publisher on the first)\n\n" + _table(by("cluster"), [
            ("setup", "server"), ("N", "subs"), ("published", "published"),
            ("deliveries/s", "deliveries_per_s"), ("lost", _lost), ("dup", "dups"),
            ("p50 ms", "lat_p50_ms"), ("p99 ms", "lat_p99_ms"),
            ("same-server p50/p99", lambda r: f"{_fmt(r.get('same-server_lat_p50_ms'))} / {_fmt(r.get('same-server_lat_p99_ms'))}" if r.get("same-server_lat_p99_ms") is not None else None),
            ("cross-server p50/p99", lambda r: f"{_fmt(r.get('cross-server_lat_p50_ms'))} / {_fmt(r.get('cross-server_lat_p99_ms'))}" if r.get("cross-server_lat_p99_ms") is not None else None),
            ("ack p99 ms", "ack_p99_ms"), ("server CPU s", "server_cpu_s"), ("redis CPU s", "redis_cpu_s"),
            ("others' CPU s", "others_cpu_s"), ("note", _err)]))
    conn = by("connect") + by("connect-redis")
    if conn:
        parts.append("### (e) Connect rate (connect + `connected` + subscribe + `subscribed`)\n\n" + _table(conn, [
            ("server", "server"), ("mode", "mode"), ("connected", "connected"),
            ("failures", lambda r: _fmt(r.get("connect_failure_kinds")) if r.get("connect_failures") else 0),
            ("connects/s", "connects_per_s"), ("p50 ms", "connect_p50_ms"), ("p99 ms", "connect_p99_ms"),
            ("max ms", "connect_max_ms"),
            ("Redis clients before/max/after", lambda r: f"{r['redis_clients_before']} / {r['redis_clients_max']} / {r['redis_clients_after']}" if "redis_clients_max" in r else None),
            ("Redis connections opened", "redis_connections_opened"),
            ("SYNs over listen backlog", "listen_overflows"),
            ("server CPU s", "server_cpu_s"), ("others' CPU s", "others_cpu_s"), ("note", _err)]))
    if by("layer"):
        parts.append("### Issue 3: publisher's cost of `group_send` (channels-redis)\n\n" + _table(by("layer"), [
            ("layer", "layer"), ("group members", "group_members"), ("reps", "reps"),
            ("p50 ms", "group_send_p50_ms"), ("mean ms", "group_send_mean_ms"),
            ("max ms", "group_send_max_ms"), ("note", _err)]))
    if by("publish-cost"):
        parts.append("### Publisher's cost: `await hub.publish.publish(...)` vs subscribers\n\n" + _table(by("publish-cost"), [
            ("backend", "backend"), ("where the subscribers are", "where"),
            ("subscribers", lambda r: r.get("subscribers_in_other_process", r.get("local_subscribers"))),
            ("publish p50 ms", "publish_p50_ms"), ("publish mean ms", "publish_mean_ms"),
            ("publish max ms", "publish_max_ms"), ("local fan-out p50 ms", "fanout_p50_ms"),
            ("note", _err)]))
    return "\n\n".join(p for p in parts if p)


def load(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main() -> None:
    results = []
    for path in sys.argv[1:]:
        results += load(path)
    print(render(results))


if __name__ == "__main__":
    main()
