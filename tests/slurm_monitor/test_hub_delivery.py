"""The monitor as a real process feeding a real hub (daphne), through both sinks:
``http`` (the embedded hub: REST with the service token) and ``layer`` (Redis channel layer).
Slurm is played by ``fake_slurm``; the real cluster is in test_e2e_slurm.py."""

from __future__ import annotations

import asyncio
import signal

import pytest

from tests.slurm_monitor import shapes
from tests.slurm_monitor.wsclient import Subscriber, counts

pytestmark = pytest.mark.django_db(transaction=True)

CHANNELS = ["jobs", "nodes", "metrics", "notifications", "alerts", "user:alice"]
FAST = ["--jobs-interval", "0.3", "--nodes-interval", "0.3", "--metrics-interval", "1"]

PENDING = shapes.with_changes(shapes.JOBS[:1], "id", 101)
FAILED = shapes.with_changes(shapes.JOBS[:1], "id", 101, state="FAILED", nodes="gpu01",
                             start=1700000100, end=1700000200, raw_exit=3 << 8)
CN01_DRAINED = shapes.with_changes(shapes.NODES, "name", "cn01", base="IDLE", alloc=0, flags=["DRAIN"],
                                   reason="maintenance")
CN03_BACK = shapes.with_changes(CN01_DRAINED, "name", "cn03", base="IDLE", flags=[], reason="")


@pytest.fixture
def alice(make_user):
    """Owner of the fake jobs, and staff (the alerts channel is staff-only)."""
    return make_user("alice", staff=True)[1]


@pytest.mark.parametrize("sink", ["http", "layer"])
async def test_events_reach_subscribers_exactly_once(sink, alice, hub_server, redis_url, fake_slurm,
                                                     monitor_process):
    env = {"REDIS_URL": redis_url} if sink == "layer" else {}
    server = hub_server(env=env)
    monitor = monitor_process([*FAST, "--sink", sink, "--hub-url", server.url],
                              {**env, "SLURM_MONITOR_BIN_DIR": fake_slurm.dir}, name=f"monitor-{sink}")
    await asyncio.to_thread(monitor.wait_for_log, "nodes poll:")
    client = await Subscriber.open(server.ws_url, alice, CHANNELS)

    fake_slurm.set_jobs(PENDING)
    await client.wait_for(lambda f: f["type"] == "job_submitted" and f["channel"] == "user:alice")
    fake_slurm.set_jobs(FAILED)
    note = await client.wait_for(lambda f: f["type"] == "notification" and f["channel"] == "user:alice")
    assert (note["data"]["type"], note["data"]["data"]["exit_code"]) == ("job_failed", 3)
    assert note["data"]["id"] > 0  # persisted by the hub's notification service
    fake_slurm.set_nodes(CN01_DRAINED)
    drained = await client.wait_for(lambda f: f["type"] == "notification" and f["data"]["type"] == "node_drained")
    # cluster-wide: on `notifications` only, persisted (listed by REST after a reload), no user
    assert drained["channel"] == "notifications"
    assert drained["data"]["id"] > 0 and drained["data"]["user"] is None
    fake_slurm.set_nodes(CN03_BACK)  # the only down node is back: the nodes_down alert resolves
    await client.wait_for(lambda f: f["type"] == "alert_resolved")
    await client.wait_for(lambda f: f["type"] == "metrics_update")
    await asyncio.to_thread(monitor.wait_for_log, "nodes poll:", monitor.log_text().count("nodes poll:") + 3)

    assert await asyncio.to_thread(monitor.stop, signal.SIGTERM) == 0
    await client.close()
    seen = counts(client.publications(), lambda f: (f["channel"], f["type"], f["data"].get("job_id")
                                                    or f["data"].get("node") or f["data"].get("alert_id")
                                                    or f["data"].get("type")))
    expected = {
        ("jobs", "job_submitted", "101"): 1, ("user:alice", "job_submitted", "101"): 1,
        ("jobs", "job_state_changed", "101"): 1, ("user:alice", "job_state_changed", "101"): 1,
        ("user:alice", "notification", "job_failed"): 1,  # a user's: never on `notifications`
        ("nodes", "node_state_changed", "cn01"): 1, ("nodes", "node_state_changed", "cn03"): 1,
        ("nodes", "node_resource_change", "cn01"): 1,
        ("notifications", "notification", "node_drained"): 1,
        ("alerts", "alert_resolved", "nodes_down"): 1,
    }
    assert {k: v for k, v in seen.items() if k[1] != "metrics_update"} == expected
    assert "received SIGTERM" in monitor.log_text() and "monitor stopped" in monitor.log_text()


async def test_one_poll_serves_every_viewer(alice, hub_server, fake_slurm, monitor_process):
    """The Slurm commands per round do not depend on how many clients are connected."""
    server = hub_server(env={"HUB_MAX_CONNECTIONS_PER_USER": "50"})
    env = {"SLURM_MONITOR_BIN_DIR": fake_slurm.dir}
    args = ["--once", "--sink", "http", "--hub-url", server.url]
    fake_slurm.set_jobs(shapes.JOBS)
    assert await asyncio.to_thread(monitor_process(args, env, "once-0").wait) == 0
    alone = fake_slurm.calls()
    assert sorted(alone) == ["scontrol --version", "scontrol show nodes --json", "squeue --all --json",
                             # the state tier (the fake says 25.11), then the full cycle
                             "squeue --only-job-state -t all -h -o %A|%T|%K"]

    clients = await asyncio.gather(*(Subscriber.open(server.ws_url, alice, ["jobs", "nodes", "metrics"])
                                     for _ in range(25)))
    fake_slurm.set_jobs(FAILED)
    assert await asyncio.to_thread(monitor_process(args, env, "once-25").wait) == 0
    assert sorted(fake_slurm.calls()[len(alone):]) == sorted(alone)
    for client in clients:  # ... and every one of them was served by that single poll
        await client.wait_for(lambda f: f["type"] == "metrics_update", timeout=20)
        await client.wait_for(lambda f: f["type"] == "job_state_changed", timeout=20)
    for client in clients:
        await client.close()


async def test_the_http_sink_posts_one_request_per_poll(alice, hub_server, make_user):
    """A poll's events (with their copies to the job owner) go out as ONE list body, in
    order; an event the hub refuses does not cost the others (the batch is retried item by
    item)."""
    from django.contrib.auth.models import Permission

    from slurm_monitor.events import Publication
    from slurm_monitor.sinks import HttpSink

    server = hub_server()
    svc, key = await asyncio.to_thread(make_user, "svc-monitor")
    await asyncio.to_thread(lambda: svc.user_permissions.add(
        Permission.objects.get(codename="broadcast", content_type__app_label="hub")))
    client = await Subscriber.open(server.ws_url, alice, ["jobs", "user:alice"])
    sink = HttpSink(server.url, key)
    events = [Publication("jobs", "job_submitted", {"job_id": str(n)}, user="alice" if n % 2 else None)
              for n in range(40)]
    assert await sink.deliver(events, ()) == (40, 0, "")
    assert sink.requests_sent == 1
    for channel in ("user:alice", "jobs"):  # two channels: the protocol orders each, not the pair
        await client.wait_for(lambda f, c=channel: f.get("channel") == c and f.get("data", {}).get("job_id") == "39")
    on_jobs = [f["data"]["job_id"] for f in client.publications() if f["channel"] == "jobs"]
    assert on_jobs == [str(n) for n in range(40)]

    bad = [Publication("jobs", "job_submitted", {"job_id": "a"}), Publication("no such!", "x", {}),
           Publication("jobs", "job_submitted", {"job_id": "b"})]
    sent, failed, first_error = await sink.deliver(bad, ())
    assert (sent, failed) == (2, 1) and "no such!" in first_error
    await client.close()
