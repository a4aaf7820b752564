"""Issue 15: the Slurm-user mapping end to end, over daphne and the monitor's delivery path.

Django user ``alice.smith`` is the Slurm user ``asmith`` (a profile staff set). The monitor
knows only Slurm names: it publishes ``asmith``'s job events on ``user:asmith`` and notifies
``asmith``. They must reach alice's socket on her personal channel and her notification list;
with ``HUB_PRIVATE_JOBS`` she lists asmith's jobs and not bob's. The attackers: bob follows
``user:asmith``; an account literally named ``asmith``, made after the mapping, gets nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
import requests
from asgiref.sync import sync_to_async

from slurm_monitor import store
from slurm_monitor.diff import Changes
from slurm_monitor.events import Notification, build_job_submitted
from slurm_monitor.monitor import Monitor
from slurm_monitor.sinks import build_sink
from tests.slurm_monitor.test_snapshot import EXPECTED_JOBS
from tests.wsutil import connected, recv_until, send_json

# EXPECTED_JOBS with the Slurm user alice renamed asmith: her jobs, bob's, and others'
JOBS = {job_id: dataclasses.replace(job, user="asmith") if job.user == "alice" else job
        for job_id, job in EXPECTED_JOBS.items()}
ASMITH_JOBS = sorted(j for j, job in JOBS.items() if job.user == "asmith")
BOB_JOBS = sorted(j for j, job in JOBS.items() if job.user == "bob")


@pytest.fixture(autouse=True)
async def _close_worker_thread_connections():
    yield
    from django.db import connections

    await sync_to_async(connections.close_all)()


@pytest.fixture
def people(make_user):
    from hub.models import HubProfile

    alice, alice_token = make_user("alice.smith")
    HubProfile.objects.create(user=alice, slurm_user="asmith")
    return {"alice": alice_token, "bob": make_user("bob")[1]}


def _get(server, path: str, token: str) -> dict:
    response = requests.get(f"{server.url}{path}", headers={"Authorization": f"Token {token}"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


async def get(server, path: str, token: str) -> dict:
    return await asyncio.to_thread(_get, server, path, token)


async def subscribe(ws, channel: str, frame_id: int) -> dict:
    await send_json(ws, {"type": "subscribe", "channel": channel, "id": frame_id})
    return await recv_until(ws, lambda f: f.get("id") == frame_id)


@pytest.mark.django_db(transaction=True)
async def test_a_mapped_user_gets_her_slurm_users_events_jobs_and_notifications(hub_server, people):
    server = hub_server(env={"HUB_PRIVATE_JOBS": "true"})
    await sync_to_async(store.save_jobs)(None, JOBS, "test")
    alice, hello = await connected(f"{server.ws_url}/ws/?token={people['alice']}")
    assert hello["user"] == "alice.smith"
    bob, _ = await connected(f"{server.ws_url}/ws/?token={people['bob']}")

    # bob cannot follow asmith; alice cannot follow her Django name's channel (it names no one)
    assert (await subscribe(bob, "user:asmith", 1)).get("code") == "forbidden"
    assert (await subscribe(alice, "user:alice.smith", 1)).get("code") == "forbidden"

    # the monitor's real delivery (HTTP sink): a job event for the Slurm user asmith and a
    # notification addressed to asmith reach alice's socket on user:asmith without a subscribe
    monitor = Monitor(collector=None, sink=await build_sink("http", server.url, "slurm-monitor"),
                      persist=False)
    job = JOBS[ASMITH_JOBS[0]]
    assert await monitor.deliver(Changes((build_job_submitted(job),)), "jobs") == 1
    event = await recv_until(alice, lambda f: f["type"] == "job_submitted")
    assert (event["channel"], event["data"]["job_id"], event["data"]["user"]) == ("user:asmith", job.job_id, "asmith")
    failed = Notification(type="job_failed", title=f"Job {job.job_id} failed", message="exit code 1",
                          severity="error", user="asmith")
    assert await monitor.deliver(Changes(notifications=(failed,)), "jobs") == 1
    pushed = await recv_until(alice, lambda f: f["type"] == "notification")
    assert (pushed["channel"], pushed["data"]["user"]) == ("user:asmith", "asmith")

    # REST: her list shows asmith's notification; bob's does not
    mine = await get(server, "/api/notifications", people["alice"])
    assert [n["title"] for n in mine["results"]] == [f"Job {job.job_id} failed"]
    assert (await get(server, "/api/notifications", people["bob"]))["results"] == []
    # ... and she can mark it read (it is hers)
    marked = await asyncio.to_thread(
        requests.post, f"{server.url}/api/notifications/{mine['results'][0]['id']}/read",
        headers={"Authorization": f"Token {people['alice']}"}, timeout=10)
    assert marked.status_code == 200 and marked.json()["read"] is True

    # HUB_PRIVATE_JOBS: asmith's jobs for alice, bob's for bob, never each other's
    listed = await get(server, "/api/cluster/jobs", people["alice"])
    assert sorted(j["job_id"] for j in listed["results"]) == ASMITH_JOBS
    assert (await get(server, "/api/cluster/jobs?user=bob", people["alice"]))["results"] == []
    bobs = await get(server, "/api/cluster/jobs", people["bob"])
    assert sorted(j["job_id"] for j in bobs["results"]) == BOB_JOBS

    # bob's socket never saw asmith's event or notification: his first frame after a ping is the pong
    await send_json(bob, {"type": "ping", "id": "p"})
    first = await recv_until(bob, lambda f: f["type"] in ("job_submitted", "notification", "pong"))
    assert first["type"] == "pong"
    await alice.close()
    await bob.close()


@pytest.mark.django_db(transaction=True)
async def test_an_account_named_after_a_mapped_slurm_user_gets_none_of_its_data(hub_server, people, make_user):
    server = hub_server(env={"HUB_PRIVATE_JOBS": "true"})
    await sync_to_async(store.save_jobs)(None, JOBS, "test")
    _, squatter = await sync_to_async(make_user)("asmith")  # made after staff mapped alice
    ws, hello = await connected(f"{server.ws_url}/ws/?token={squatter}")
    assert hello["user"] == "asmith"
    assert (await subscribe(ws, "user:asmith", 1)).get("code") == "forbidden"
    assert (await get(server, "/api/cluster/jobs", squatter))["results"] == []
    await ws.close()
