"""Smoke run of bench/slurm_e2e.py's core at a tiny size: Redis, daphne and the monitor on
the simulated cluster, a few viewers, a few seconds. Checks that it reports every figure
(commands per phase, matched job events with latencies, per-poll CPU, peak RSS) and that
every job event a viewer got was matched to the simulator's change. No timing assertions."""

from __future__ import annotations

import os

import pytest

from bench.slurm_e2e import parser, run


@pytest.mark.e2e
def test_slurm_e2e_reports_commands_latency_cpu_and_memory():
    options = parser().parse_args(["--size", "10x200", "--duration", "6", "--viewers", "4", "--probes", "2",
                                   "--jobs-interval", "0.5", "--nodes-interval", "1",
                                   "--metrics-interval", "2", "--full-every", "4"])
    result = run(options)
    for phase in ("no_viewers", "viewers"):
        commands = result["commands"][phase]
        assert commands["by_command"]["squeue --only-job-state"] > 0, commands
        assert commands["per_minute"] > 0
    assert result["viewers"]["count"] == 4
    assert result["viewers"]["received"]["drain_min_bytes"] > 0  # the sockets that only read got data
    assert result["viewers"]["closes"] == {} and result["viewers"]["errors"] == {}
    assert result["viewers"]["events_per_probe"].get("metrics_update", 0) > 0
    assert result["viewers"]["uncorrelated_job_events"] == 0
    for figure in ("detect", "worst", "publish_to_socket"):
        assert result["latency"][figure]["n"] > 0
        assert isinstance(result["latency"][figure]["p99_s"], float)
    assert "jobs baseline" in result["polls"] and "nodes" in result["polls"]
    assert any(kind.startswith("state") for kind in result["polls"]), result["polls"]
    assert all(isinstance(row["cpu_median_s"], float) for row in result["polls"].values())
    assert result["monitor_peak_rss_mb"] > 0
    assert result["cpu_share"]["monitor"]["no_viewers"] >= 0
    assert set(result["pids"]) == {"redis", "hub-daphne", "monitor"}
    for pid in result["pids"].values():  # everything it started is stopped
        assert not os.path.exists(f"/proc/{pid}")
