"""Staleness: /api/health answers ``degraded`` (200) naming each Slurm monitor stream 3 of
its intervals late (PROTOCOL.md §6), /metrics exports each stream's age. In-process against
heartbeat rows, then for real: daphne and ``run_slurm_monitor --mock`` killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from django.core.cache import cache
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from slurm_monitor import heartbeats
from slurm_monitor.models import ClusterStream
from tests.conftest import ARTIFACTS, ROOT, database_env, stop_process

HTTP_TIMEOUT_SECONDS = 10  # a hang guard, not a latency assertion


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()


def age_samples(text: str) -> dict[str, float]:
    return {s.labels["stream"]: s.value for f in text_string_to_metric_families(text)
            for s in f.samples if s.name == "hub_slurm_stream_age_seconds"}


def backdate(stream: str, seconds: float) -> None:
    """The stream's last successful poll was ``seconds`` ago."""
    row = ClusterStream.objects.get(name=heartbeats.HEARTBEAT_PREFIX + stream)
    row.data = {**row.data, "last_ok_at": time.time() - seconds}
    row.save()


@pytest.mark.django_db
def test_a_hub_without_a_monitor_is_healthy():
    body = APIClient().get("/api/health").json()
    assert (body["status"], body["stale"], body["streams"]) == ("healthy", {}, {})
    assert age_samples(Client().get("/metrics").content.decode()) == {}


@pytest.mark.django_db
def test_fresh_streams_are_healthy():
    for stream, interval in (("jobs", 5), ("nodes", 10), ("metrics", 15)):
        heartbeats.record_heartbeat(stream, True, interval, "test")
    body = APIClient().get("/api/health").json()
    assert body["status"] == "healthy" and body["stale"] == {}
    assert set(body["streams"]) == {"jobs", "nodes", "metrics"}
    assert body["streams"]["nodes"]["interval"] == 10 and body["streams"]["nodes"]["ok"] is True


@pytest.mark.django_db
def test_a_stream_three_intervals_late_degrades_health_and_is_named():
    heartbeats.record_heartbeat("jobs", True, 5, "test")
    heartbeats.record_heartbeat("nodes", True, 10, "test")
    backdate("jobs", 16)
    backdate("nodes", 25)  # late, but not by 3 of its intervals (30 s; room for a slow request)
    response = APIClient().get("/api/health")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "degraded"
    assert set(body["stale"]) == {"jobs"}
    assert body["stale"]["jobs"]["interval"] == 5 and 16 <= body["stale"]["jobs"]["age"] < 60
    assert {"clients", "subscriptions", "active_connections", "timestamp"} <= set(body)  # keys kept


@pytest.mark.django_db
def test_failing_polls_count_as_not_reporting():
    heartbeats.record_heartbeat("jobs", True, 5, "test")
    backdate("jobs", 20)
    heartbeats.record_heartbeat("jobs", False, 5, "test")  # the monitor runs, squeue keeps failing
    body = APIClient().get("/api/health").json()
    assert body["status"] == "degraded" and body["stale"]["jobs"]["ok"] is False


@pytest.mark.django_db
def test_metrics_export_each_streams_age_at_scrape_time():
    heartbeats.record_heartbeat("jobs", True, 5, "test")
    heartbeats.record_heartbeat("metrics", True, 15, "test")
    backdate("jobs", 42)
    text = Client().get("/metrics").content.decode()
    ages = age_samples(text)
    assert set(ages) == {"jobs", "metrics"}
    assert 42 <= ages["jobs"] < 100 and ages["metrics"] < 42
    assert 'hub_slurm_stream_interval_seconds{cluster="default",stream="jobs"} 5.0' in text


# --- for real: daphne, the monitor, SIGKILL ------------------------------------------------

def start_monitor(hub_url: str) -> subprocess.Popen:
    env = dict(os.environ)
    env.update({"DJANGO_SETTINGS_MODULE": "realtime_project.settings", "PYTHONUNBUFFERED": "1",
                "SLURM_MONITOR_JOBS_INTERVAL": "0.5", "SLURM_MONITOR_NODES_INTERVAL": "1",
                "SLURM_MONITOR_METRICS_INTERVAL": "1.5"})
    env.update(database_env())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with open(ARTIFACTS / f"monitor-stale-{os.getpid()}.log", "ab") as log:
        return subprocess.Popen([sys.executable, "manage.py", "run_slurm_monitor", "--mock", "--seed", "3",
                                 "--sink", "http", "--hub-url", hub_url],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} within {timeout:g}s"
        time.sleep(0.2)


@pytest.mark.timeout(180)
@pytest.mark.usefixtures("transactional_db")
def test_killed_monitor_degrades_health_and_its_streams_age(hub_server):
    server = hub_server({"HUB_API_HEALTH_RATE_LIMIT": "100000/min"})  # polled below
    monitor = start_monitor(server.url)
    try:
        def health() -> dict:
            return requests.get(server.url + "/api/health", timeout=HTTP_TIMEOUT_SECONDS).json()

        def ages() -> dict[str, float]:
            return age_samples(requests.get(server.url + "/metrics", timeout=HTTP_TIMEOUT_SECONDS).text)

        wait_until(lambda: (lambda b: b["status"] == "healthy" and set(b["streams"]) == {"jobs", "nodes", "metrics"})(
            health()), 90, "the monitor never reported all three streams")
        monitor.send_signal(signal.SIGKILL)
        monitor.wait(timeout=10)

        body = wait_until(lambda: (lambda b: b if b["status"] == "degraded" and "jobs" in b["stale"] else None)(
            health()), 30, "health never turned degraded")
        assert body["stale"]["jobs"]["interval"] == 0.5 and body["stale"]["jobs"]["age"] >= 1.5
        first = ages()["jobs"]
        assert first >= 1.5
        wait_until(lambda: ages()["jobs"] > first + 1, 30, "the jobs stream's age did not grow")
        # Everything stopped with the monitor: the other streams follow.
        wait_until(lambda: set(health()["stale"]) == {"jobs", "nodes", "metrics"}, 30,
                   "nodes and metrics never went stale")
    finally:
        stop_process(monitor)
