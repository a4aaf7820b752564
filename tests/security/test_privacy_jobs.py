"""Issue 11, point 12: ``HUB_PRIVATE_JOBS`` for sites with Slurm's ``PrivateData=jobs``.

The attacker is bob, a plain user on a site where ``squeue`` shows each user only their own
jobs: he subscribes to ``jobs``, lists ``/api/cluster/jobs`` (with and without a ``user``
filter naming alice) and follows ``user:alice``. He must still get his own jobs, live on
``user:bob`` (published through the monitor's real delivery path: ``Monitor.deliver`` and the
HTTP sink) and over REST. Off (the default), every user sees every job, as ``squeue`` does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys

import pytest
import requests
from asgiref.sync import sync_to_async

from hub.policies import Principal, build_policies
from slurm_monitor import store
from slurm_monitor.diff import Changes
from slurm_monitor.events import build_job_removed, build_job_state_changed, build_job_submitted
from slurm_monitor.monitor import Monitor
from slurm_monitor.sinks import build_sink
from tests.conftest import ROOT
from tests.slurm_monitor.test_snapshot import EXPECTED_JOBS
from tests.wsutil import connected, recv_until, send_json

PRIVATE = {"HUB_PRIVATE_JOBS": "true"}
ALICE_JOBS = sorted(j for j, job in EXPECTED_JOBS.items() if job.user == "alice")
BOB_JOBS = sorted(j for j, job in EXPECTED_JOBS.items() if job.user == "bob")


@pytest.fixture(autouse=True)
async def _close_worker_thread_connections():
    yield
    from django.db import connections

    await sync_to_async(connections.close_all)()


@pytest.fixture
def tokens(make_user):
    return {"alice": make_user("alice")[1], "bob": make_user("bob")[1],
            "root": make_user("root", staff=True)[1]}


async def get_jobs(server, token: str, query: str = "") -> list[str]:
    response = await asyncio.to_thread(requests.get, f"{server.url}/api/cluster/jobs{query}", timeout=10,
                                       headers={"Authorization": f"Token {token}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == len(body["results"])
    return sorted(j["job_id"] for j in body["results"])


async def subscribe(ws, channel: str, frame_id: int) -> dict:
    await send_json(ws, {"type": "subscribe", "channel": channel, "id": frame_id})
    return await recv_until(ws, lambda f: f.get("id") == frame_id)


def test_the_policy_default_changes_with_the_flag():
    bob, staff = Principal("bob"), Principal("root", is_staff=True)
    private = build_policies({}, default_history=100, private_jobs=True)
    assert not private.resolve("jobs").allows("subscribe", bob, "jobs")
    assert private.resolve("jobs").allows("subscribe", staff, "jobs")
    assert private.resolve("user:bob").allows("subscribe", bob, "user:bob")
    assert not private.resolve("user:alice").allows("subscribe", bob, "user:alice")
    public = build_policies({}, default_history=100)
    assert public.resolve("jobs").allows("subscribe", bob, "jobs")
    # an operator's explicit jobs policy still wins over the flag
    chosen = build_policies({"jobs": {"subscribe": "authenticated"}}, default_history=100, private_jobs=True)
    assert chosen.resolve("jobs").allows("subscribe", bob, "jobs")


def test_a_bad_value_stops_start_up_naming_the_variable():
    """A typo must not leave jobs public on a PrivateData=jobs site."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "realtime_project.settings", "HUB_PRIVATE_JOBS": "ture"}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "HUB_PRIVATE_JOBS" in result.stderr


@pytest.mark.django_db(transaction=True)
async def test_private_jobs_bob_sees_only_his_own(hub_server, tokens):
    server = hub_server(env=PRIVATE)
    await sync_to_async(store.save_jobs)(None, EXPECTED_JOBS, "test")  # alice's, bob's and others'

    # REST: his rows only; naming alice in the filter does not widen it
    assert await get_jobs(server, tokens["bob"]) == BOB_JOBS
    assert await get_jobs(server, tokens["bob"], "?user=alice") == []
    assert await get_jobs(server, tokens["bob"], "?user=bob") == BOB_JOBS
    assert await get_jobs(server, tokens["root"]) == sorted(EXPECTED_JOBS)  # staff see every job

    # live: `jobs` and user:alice are closed to him, user:bob is his
    bob, _ = await connected(f"{server.ws_url}/ws/?token={tokens['bob']}")
    alice, _ = await connected(f"{server.ws_url}/ws/?token={tokens['alice']}")
    for ws, channel, expected in ((bob, "jobs", "forbidden"), (bob, "user:alice", "forbidden")):
        frame = await subscribe(ws, channel, 1)
        assert (frame["type"], frame.get("code")) == ("error", expected), channel
    assert (await subscribe(bob, "user:bob", 2))["type"] == "subscribed"
    assert (await subscribe(alice, "user:alice", 2))["type"] == "subscribed"

    # bob's job goes through the monitor's delivery: submitted, state changed, removed
    job = EXPECTED_JOBS[BOB_JOBS[0]]
    running = dataclasses.replace(job, state="RUNNING")
    monitor = Monitor(collector=None, sink=await build_sink("http", server.url, "slurm-monitor"),
                      persist=False)
    changes = Changes((build_job_submitted(job), build_job_state_changed(job, running),
                       build_job_removed(running)))
    assert await monitor.deliver(changes, "jobs") == 3
    got = [await recv_until(bob, lambda f: f["type"].startswith("job_")) for _ in range(3)]
    assert [(f["channel"], f["type"], f["data"]["job_id"]) for f in got] == [
        ("user:bob", "job_submitted", job.job_id), ("user:bob", "job_state_changed", job.job_id),
        ("user:bob", "job_removed", job.job_id)]

    # alice's own job reaches her, and is the first job event she sees: none of bob's came
    hers = EXPECTED_JOBS[ALICE_JOBS[0]]
    await monitor.deliver(Changes((build_job_submitted(hers),)), "jobs")
    first = await recv_until(alice, lambda f: f["type"].startswith("job_"))
    assert (first["channel"], first["data"]["job_id"], first["data"]["user"]) == ("user:alice", hers.job_id, "alice")
    await bob.close()
    await alice.close()


@pytest.mark.django_db(transaction=True)
async def test_off_by_default_every_user_sees_every_job(hub_server, tokens):
    server = hub_server()
    await sync_to_async(store.save_jobs)(None, EXPECTED_JOBS, "test")
    assert await get_jobs(server, tokens["bob"]) == sorted(EXPECTED_JOBS)
    bob, _ = await connected(f"{server.ws_url}/ws/?token={tokens['bob']}")
    assert (await subscribe(bob, "jobs", 1))["type"] == "subscribed"
    await bob.close()
