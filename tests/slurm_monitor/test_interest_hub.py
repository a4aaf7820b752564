"""Interest-driven polling through a real hub (daphne) with HUB_PRIVATE_JOBS: pages watch over
REST, the monitor (in this process, the ``http`` sink) asks Slurm once and the owner's socket
hears one ``job_progress``; another user can neither watch the job nor hear it. Slurm is
scripted (test_interest.Slurm); the real cluster's ``squeue --start``: test_interest_slurm.py."""

from __future__ import annotations

import asyncio

import pytest
import requests

from slurm_monitor.collector import SlurmCollector
from slurm_monitor.interest import InterestConfig
from slurm_monitor.monitor import History, Monitor
from slurm_monitor.sinks import HttpSink
from tests.slurm_monitor import shapes
from tests.slurm_monitor.test_interest import ESTIMATE, Slurm
from tests.slurm_monitor.test_monitor import squeue
from tests.slurm_monitor.wsclient import Subscriber

pytestmark = pytest.mark.django_db(transaction=True)

ALICE_PENDING = dict(shapes.JOBS[0], id=101)  # alice's
ALICE_LATER = dict(shapes.JOBS[0], id=103)
BOB_LATER = dict(shapes.JOBS[1], id=102)  # bob's


async def watch(server, token, job_id):
    return await asyncio.to_thread(requests.post, f"{server.url}/api/cluster/jobs/{job_id}/watch",
                                   headers={"Authorization": f"Token {token}"}, timeout=10)


async def test_the_owner_hears_one_job_progress_and_nobody_else_does(hub_server, make_user):
    from django.contrib.auth.models import Permission

    server = hub_server(env={"HUB_PRIVATE_JOBS": "true", "HUB_MAX_CONNECTIONS_PER_USER": "40"})
    _, alice = await asyncio.to_thread(make_user, "alice")
    _, bob = await asyncio.to_thread(make_user, "bob")
    svc, svc_key = await asyncio.to_thread(make_user, "svc-monitor")
    await asyncio.to_thread(lambda: svc.user_permissions.add(
        Permission.objects.get(codename="broadcast", content_type__app_label="hub")))

    slurm = Slurm(squeue("22.05", [ALICE_PENDING]), squeue("22.05", [ALICE_PENDING]),
                  squeue("22.05", [ALICE_PENDING, ALICE_LATER, BOB_LATER]))
    monitor = Monitor(SlurmCollector(runner=slurm, timeout=5), HttpSink(server.url, svc_key),
                      history=History(interval=3600, sacct_batch=0), interest=InterestConfig(interval=0))
    await monitor.poll_jobs()  # the job's row exists: the page can open

    pages = [await Subscriber.open(server.ws_url, alice, ["user:alice"]) for _ in range(30)]
    intruder = await Subscriber.open(server.ws_url, bob, ["user:bob"])
    for _ in range(30):  # thirty open pages of the same job
        assert (await watch(server, alice, 101)).status_code == 204
    refused = await watch(server, bob, 101)
    assert refused.status_code == 404 and refused.json() == {"code": "not_found", "message": "no such job"}

    await monitor.poll_jobs()  # the estimate is new: one job_progress
    await monitor.poll_jobs()  # nothing changed; alice's job 103 and bob's 102 appear (sentinels)
    assert len(slurm.named("squeue", "--start")) == 2  # once per cycle, not once per page

    for page in pages:
        await page.wait_for(lambda f: f["type"] == "job_submitted" and f["data"]["job_id"] == "103")
        heard = page.publications("job_progress")
        assert len(heard) == 1 and heard[0]["channel"] == "user:alice"
        assert heard[0]["data"]["job_id"] == "101" and heard[0]["data"]["efficiency"] is None
        assert heard[0]["data"]["start_estimate"] == _iso_local(ESTIMATE)
    await intruder.wait_for(lambda f: f["type"] == "job_submitted" and f["data"]["job_id"] == "102")
    assert intruder.publications("job_progress") == []

    detail = await asyncio.to_thread(requests.get, f"{server.url}/api/cluster/jobs/101",
                                     headers={"Authorization": f"Token {alice}"}, timeout=10)
    assert detail.json()["start_estimate"] == _iso_local(ESTIMATE)
    for client in [*pages, intruder]:
        await client.close()


def _iso_local(text: str) -> str:
    from tests.slurm_monitor.test_interest import local

    from slurm_monitor.events import iso

    return iso(local(text))
