"""GET /metrics: the custom collector over every process's stats, the database fallback,
the Slurm monitor's poll figures, and real daphne processes (one alone, two sharing Redis)."""

from __future__ import annotations

import asyncio
import time

import pytest
import requests
from asgiref.sync import sync_to_async
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from hub.rest import selectors
from hub.ops import stats_recorder
from hub.engine.base import ProcessStats
from hub.engine.errors import HubUnavailable
from hub.ops.metrics import LATENCY_BUCKETS_SECONDS, POLL_BUCKETS_SECONDS, record_poll
from tests.wsutil import connected, recv_until, send_json


@pytest.fixture(autouse=True)
async def _close_worker_thread_connections():
    """sync_to_async runs ORM calls in asgiref's worker thread, whose connection would
    otherwise stay open and keep PostgreSQL from dropping the test database."""
    yield
    from django.db import connections

    await sync_to_async(connections.close_all)()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a Prometheus text exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def scrape(path: str = "/metrics", **headers) -> str:
    response = Client().get(path, **headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def proc(server: str, **kw) -> ProcessStats:
    now = time.time()
    base = dict(server=server, host="h", pid=1, started_at=now - 60, last_heartbeat=now,
                active_connections=0, total_connections=0, messages_sent=0, messages_received=0)
    return ProcessStats(**{**base, **kw})


@pytest.mark.django_db
def test_every_process_is_a_server_labelled_series(monkeypatch):
    buckets = [0] * (len(LATENCY_BUCKETS_SECONDS) + 1)
    buckets[0], buckets[3], buckets[-1] = 5, 2, 1
    a = proc(
        "hub-a", active_connections=3, total_connections=10, messages_sent=100, messages_received=40,
        errors={"unknown_channel": 2, "rate_limited": 1}, dropped_sends=4, slow_consumer_closes=1,
        subscriptions={"jobs": 2, "user:alice": 1, "user:bob": 1}, publish_latency_sum=0.5,
        publish_latency_count=8, publish_latency_buckets=tuple(buckets))
    b = proc("hub-b", active_connections=1, subscriptions={"jobs": 1}, publish_latency_count=3,
             publish_latency_sum=0.01)
    dead = proc("hub-dead", active_connections=7, alive=False)

    async def list_processes():
        return [a, b, dead]

    monkeypatch.setattr(selectors, "list_processes", list_processes)
    got = samples(scrape())
    assert got[("hub_stats_live", ())] == 1
    assert got[("hub_connections", (("server", "hub-a"),))] == 3
    assert got[("hub_connections", (("server", "hub-b"),))] == 1
    assert ("hub_connections", (("server", "hub-dead"),)) not in got
    assert got[("hub_process_alive", (("server", "hub-dead"),))] == 0
    assert got[("hub_process_alive", (("server", "hub-a"),))] == 1
    assert got[("hub_connections_opened_total", (("server", "hub-a"),))] == 10
    assert got[("hub_frames_sent_total", (("server", "hub-a"),))] == 100
    assert got[("hub_frames_received_total", (("server", "hub-a"),))] == 40
    assert got[("hub_dropped_sends_total", (("server", "hub-a"),))] == 4
    assert got[("hub_slow_consumer_closes_total", (("server", "hub-a"),))] == 1
    assert got[("hub_errors_total", (("code", "unknown_channel"), ("server", "hub-a")))] == 2
    assert got[("hub_subscriptions", (("channel", "jobs"), ("server", "hub-a")))] == 2
    assert got[("hub_subscriptions", (("channel", "user:*"), ("server", "hub-a")))] == 2
    assert got[("hub_subscriptions", (("channel", "jobs"), ("server", "hub-b")))] == 1
    first = repr(LATENCY_BUCKETS_SECONDS[0])
    assert got[("hub_publish_latency_seconds_bucket", (("le", first), ("server", "hub-a")))] == 5
    assert got[("hub_publish_latency_seconds_bucket", (("le", "+Inf"), ("server", "hub-a")))] == 8
    assert got[("hub_publish_latency_seconds_count", (("server", "hub-a"),))] == 8
    assert got[("hub_publish_latency_seconds_sum", (("server", "hub-a"),))] == 0.5
    # Without per-bucket counts from the engine only +Inf is known.
    assert got[("hub_publish_latency_seconds_bucket", (("le", "+Inf"), ("server", "hub-b")))] == 3


@pytest.mark.django_db
def test_client_chosen_channel_names_are_summed_as_other(monkeypatch, settings):
    """Labels come from the policies, never from a name a client chose on first use."""
    from hub.conf import get_policies

    settings.HUB = {**settings.HUB, "CHANNELS": {"ops": {"subscribe": "staff"}, "chat.*": {}}}
    get_policies.cache_clear()
    subs = {"jobs": 1, "ops": 1, "chat.lobby": 2, "chat.secret": 1, "secret-project-x": 2,
            "stock_updates": 3, "user:carol@example.edu": 1}

    async def list_processes():
        return [proc("hub-a", subscriptions=subs)]

    monkeypatch.setattr(selectors, "list_processes", list_processes)
    try:
        text = scrape()
    finally:
        get_policies.cache_clear()
    got = {dict(labels)["channel"]: value for (name, labels), value in samples(text).items()
           if name == "hub_subscriptions"}
    assert got == {"jobs": 1, "ops": 1, "chat.*": 3, "other": 5, "user:*": 1}
    assert "secret" not in text and "carol" not in text and "stock" not in text


@pytest.mark.django_db
def test_falls_back_to_the_database_rows_when_the_backend_is_down(monkeypatch):
    async def down():
        raise HubUnavailable("redis")

    stats_recorder.record(proc("hub-x", active_connections=5, errors={"forbidden": 3},
                               subscriptions={"nodes": 2}))
    monkeypatch.setattr(selectors, "list_processes", down)
    got = samples(scrape("/metrics/"))
    assert got[("hub_stats_live", ())] == 0
    assert got[("hub_connections", (("server", "hub-x"),))] == 5
    assert got[("hub_errors_total", (("code", "forbidden"), ("server", "hub-x")))] == 3
    assert got[("hub_subscriptions", (("channel", "nodes"), ("server", "hub-x")))] == 2


@pytest.mark.django_db
def test_slurm_monitor_poll_figures(monkeypatch):
    async def none():
        return []

    monkeypatch.setattr(selectors, "list_processes", none)
    record_poll("jobs", 0.02, True)
    record_poll("jobs", 0.3, False)
    record_poll("jobs", 1000.0, True)
    record_poll("nodes", 0.07, True)
    got = samples(scrape())
    jobs = (("cluster", "default"), ("stream", "jobs"))
    assert got[("slurm_monitor_polls_total", jobs)] == 3
    assert got[("slurm_monitor_poll_errors_total", jobs)] == 1
    assert got[("slurm_monitor_poll_errors_total", (("cluster", "default"), ("stream", "nodes")))] == 0
    assert got[("slurm_monitor_poll_duration_seconds_count", jobs)] == 3
    assert got[("slurm_monitor_poll_duration_seconds_sum", jobs)] == pytest.approx(1000.32)
    def bucket(le):
        labels = (("cluster", "default"), ("le", le), ("stream", "jobs"))
        return got[("slurm_monitor_poll_duration_seconds_bucket", labels)]

    assert bucket(repr(POLL_BUCKETS_SECONDS[0])) == 1
    assert bucket("0.5") == 2
    assert bucket(repr(POLL_BUCKETS_SECONDS[-1])) == 2
    assert bucket("+Inf") == 3
    assert got[("slurm_monitor_last_poll_seconds", jobs)] > 0


@pytest.mark.django_db
def test_openmetrics_when_asked_and_405_for_post():
    response = Client().get("/metrics", HTTP_ACCEPT="application/openmetrics-text; version=1.0.0")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.decode().rstrip().endswith("# EOF")
    post = Client().post("/metrics")
    assert post.status_code == 405 and post.json()["code"] == "method_not_allowed"


# --- real servers ----------------------------------------------------------------------------

async def scrape_url(url: str) -> dict:
    response = await asyncio.to_thread(requests.get, f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    return samples(response.text)


async def open_subscribed(ws_url: str, channel: str):
    ws, hello = await connected(f"{ws_url}/ws/")
    await send_json(ws, {"type": "subscribe", "channel": channel})
    await recv_until(ws, lambda f: f["type"] == "subscribed")
    return ws, hello


@pytest.mark.django_db(transaction=True)
async def test_a_real_server_reports_its_sockets_and_publications(hub_server):
    server = hub_server({"HUB_REQUIRE_AUTH": "false",
                         "HUB_CHANNELS": '{"test_channel": {"subscribe": "anyone", "publish": "anyone"}}'})
    ws, hello = await open_subscribed(server.ws_url, "test_channel")
    await send_json(ws, {"type": "publish", "channel": "test_channel", "data": {"n": 1}})
    await recv_until(ws, lambda f: f["type"] == "message")
    got = await scrape_url(server.url)
    me = (("server", hello["server"]),)
    assert got[("hub_connections", me)] == 1
    assert got[("hub_subscriptions", (("channel", "test_channel"), *me))] == 1
    assert got[("hub_frames_received_total", me)] >= 2  # subscribe + publish
    assert got[("hub_frames_sent_total", me)] >= 3  # connected, subscribed, published, message
    assert got[("hub_publish_latency_seconds_count", me)] >= 1
    await ws.close()


@pytest.mark.django_db(transaction=True)
async def test_two_servers_sharing_redis_each_scrape_shows_both(hub_server, redis_url):
    env = {"HUB_REQUIRE_AUTH": "false", "REDIS_URL": redis_url, "HUB_HEARTBEAT_INTERVAL": "1",
           "HUB_CHANNEL_PREFIX": f"metrics{int(time.time() * 1000)}"}
    one, two = hub_server(env, name="hub-m1"), hub_server(env, name="hub-m2")
    ws1, _ = await open_subscribed(one.ws_url, "jobs")
    ws2, _ = await open_subscribed(two.ws_url, "jobs")
    expected = {("hub_connections", (("server", "hub-m1"),)): 1.0,
                ("hub_connections", (("server", "hub-m2"),)): 1.0}
    for url in (one.url, two.url):
        got = {}
        for _ in range(100):  # presence is shared on the housekeeping tick
            got = await scrape_url(url)
            if all(got.get(k) == v for k, v in expected.items()):
                break
            await asyncio.sleep(0.2)
        assert {k: got.get(k) for k in expected} == expected
        assert got[("hub_stats_live", ())] == 1
    await ws1.close()
    await ws2.close()
