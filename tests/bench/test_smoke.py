"""Smoke run of the bench load tool against a real hub (daphne): a few hundred subscribers,
a short burst of publications, every delivery accounted for. No timing assertions: this
checks the tool and the delivery guarantees, not speed (that is ``python -m bench.run``)."""

from __future__ import annotations

import json

import pytest

from bench.loadtool import SubscriberPool, Target, publish_and_count

N = 300
BENCH_ENV = {
    "HUB_REQUIRE_AUTH": "false",
    "HUB_CHANNELS": json.dumps({"bench": {"subscribe": "anyone", "publish": "anyone",
                                          "history": 0}}),
    "HUB_RATE_LIMIT": "100000",
    "HUB_MAX_CONNECTIONS": "2000",
    "HUB_MAX_CONNECTIONS_PER_USER": "2000",
    # Auth off: every socket is anonymous, from one address (hub.socket.admission).
    "HUB_MAX_ANONYMOUS_CONNECTIONS": "2000",
    "HUB_MAX_CONNECTIONS_PER_ADDRESS": "2000",
}


@pytest.mark.parametrize("rx", ["c", "python"])
def test_load_tool_smoke_zero_lost(transactional_db, hub_server, monkeypatch, rx):
    """Both receive loops of the workers: the C one (bench/fastrx.c) and the Python one it
    falls back to without a compiler."""
    if rx == "python":
        monkeypatch.setenv("BENCH_PYTHON_RX", "1")  # the spawned workers inherit it
    else:
        monkeypatch.delenv("BENCH_PYTHON_RX", raising=False)
    server = hub_server(env=BENCH_ENV, name="bench-smoke")
    with SubscriberPool([Target("127.0.0.1", server.port, "/ws/", N)], "bench", procs=2,
                        concurrency=50, timeout=60) as pool:
        connected = pool.connect_summary()
        assert connected["connected"] == N, connected["connect_failure_kinds"]
        res = publish_and_count(pool, Target("127.0.0.1", server.port), mode="paced", rate=20,
                                duration=1.0, max_wait=60, quiet=30)
    assert res["published"] == 20
    assert res["acked"] == 20, res["publish_errors"]
    assert res["subs"] == N
    assert res["drained"], res["end"]
    assert res["lost"] == 0
    assert res["dups"] == 0
    assert res["bogus"] == 0
    assert res["deliveries"] == N * 20
    assert res["closes"] == {}
    assert res["client_rx"] == rx
