"""Smoke run of bench/rest_broadcast.py (the REST broadcast benchmark) against real daphnes,
embedded and with Redis: every route of the bench answers 200 without an error, the list
body publishes, the Redis rows count the engine's script calls. No timing assertions: speed
is ``python -m bench.rest_broadcast`` (docs/benchmarks.md)."""

from __future__ import annotations

import pytest

from bench import rest_broadcast

pytestmark = pytest.mark.e2e


def test_rest_broadcast_bench_runs_every_row_without_errors(monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_LOG_DIR", str(tmp_path))
    rows = rest_broadcast.main(["--seconds", "0.3", "--concurrency", "2", "--monitor-events", "20",
                                "--skip-drf"])
    routes = {(r["backend"], r["route"]) for r in rows}
    for backend in ("embedded", "redis"):
        assert {(backend, "floor"), (backend, "broadcast"), (backend, "broadcast[1000]"),
                (backend, "monitor_sink")} <= routes
    for row in rows:
        if row["route"] == "monitor_sink":
            assert row["failed"] == 0 and row["events"] == 20
            continue
        assert row["requests"] > 0 and row["errors"] == 0, row
        if row["backend"] == "redis":
            # one list body (1,000 publications) is one script call, never one per publication
            assert 0 < row["redis_script_calls"] <= row["requests"], row
