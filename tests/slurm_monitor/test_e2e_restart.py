"""Nothing lost across a real restart on the real cluster (issue 13): the monitor sees three held
jobs pending and is stopped; meanwhile they run and end (one completes, one exits 3, one is
cancelled while running) and Slurm purges them from squeue (MinJobAge); the restarted monitor
resumes from its saved state and asks sacct (slurmdbd) how they ended: each job gets exactly one
terminal event and one notification, with sacct's state and exit code."""

from __future__ import annotations

import asyncio

import pytest

from tests.slurm_monitor.test_e2e_slurm import (  # noqa: F401 (root_token: a fixture)
    clean_cluster,
    is_job,
    is_note,
    root_token,
    sbatch,
    slurm,
    wait_until,
)
from tests.slurm_monitor.wsclient import Subscriber

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(400)]

CHANNELS = ["jobs", "user:root"]
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}


def in_squeue(job_id: str) -> bool:
    return job_id in slurm("squeue", "-h", "--states=all", "-o", "%i").split()  # finished ones too


def job_state(job_id: str) -> str:
    return slurm("squeue", "-h", "-j", job_id, "-o", "%T")


async def test_jobs_that_ended_while_the_monitor_was_down_are_reported_once(slurm_cluster, root_token,  # noqa: F811
                                                                            hub_server, monitor_process):
    node = slurm_cluster["node"]
    await asyncio.to_thread(clean_cluster, node)
    server = hub_server()
    args = ["--jobs-interval", "1", "--nodes-interval", "1", "--metrics-interval", "30", "--hub-url", server.url]
    env = {"SLURM_MONITOR_HISTORY_INTERVAL": "1"}
    client = await Subscriber.open(server.ws_url, root_token, CHANNELS)
    first = monitor_process(args, env, name="monitor-restart-a")
    try:
        await asyncio.to_thread(first.wait_for_log, "jobs poll:", 2)
        done = sbatch("done", "sleep 1", hold=True)
        failing = sbatch("exit3", "exit 3", hold=True)
        doomed = sbatch("cancel", "sleep 300", hold=True)
        for job_id in (done, failing, doomed):
            await client.wait_for(lambda f, j=job_id: is_job(f, "job_submitted", j, "PENDING"))
        polls = first.log_text().count("jobs poll:")
        await asyncio.to_thread(first.wait_for_log, "jobs poll:", polls + 2)  # saved as PENDING
        assert await asyncio.to_thread(first.stop) == 0

        # While it is down: they run and end, and squeue forgets them.
        for job_id in (done, failing, doomed):
            slurm("scontrol", "release", job_id)
        await asyncio.to_thread(wait_until, lambda: job_state(doomed) == "RUNNING", f"job {doomed} running")
        slurm("scancel", doomed)
        await asyncio.to_thread(wait_until, lambda: not any(in_squeue(j) for j in (done, failing, doomed)),
                                "Slurm to purge the ended jobs from squeue (MinJobAge)", 240)

        second = monitor_process(args, env, name="monitor-restart-b")
        for kind, job_id in (("job_completed", done), ("job_failed", failing), ("job_cancelled", doomed)):
            await client.wait_for(lambda f, k=kind, j=job_id: is_note(f, k, j, "user:root"), timeout=120)
        polls = second.log_text().count("jobs poll:")
        await asyncio.to_thread(second.wait_for_log, "jobs poll:", polls + 3)  # nothing may come twice
        assert await asyncio.to_thread(second.stop) == 0
        assert "ended out of squeue's sight (sacct)" in second.log_text()  # purged: only sacct could tell
    finally:
        await asyncio.to_thread(clean_cluster, node)
    await client.close()
    frames = client.publications()

    expected = {done: ("COMPLETED", 0), failing: ("FAILED", 3), doomed: ("CANCELLED", None)}
    for channel in CHANNELS:
        for job_id, (state, _code) in expected.items():
            endings = [f["data"]["state"] for f in frames if is_job(f, "job_state_changed", job_id, channel=channel)
                       and f["data"]["state"] in TERMINAL]
            assert endings == [state], (channel, job_id, endings)
    # every job here is root's: other jobs on the shared cluster notify user:root too
    ours = [f["data"] for f in frames if f["type"] == "notification" and f["data"]["data"].get("job_id") in expected]
    notes = {note["data"]["job_id"]: note for note in ours}
    kinds = [(note["type"], note["data"]["job_id"]) for note in ours]
    assert sorted(kinds) == sorted([("job_completed", done), ("job_failed", failing), ("job_cancelled", doomed)])
    assert notes[failing]["data"]["exit_code"] == 3  # sacct's word: the JSON lost it, the text has it
    assert notes[done]["data"]["exit_code"] == 0
