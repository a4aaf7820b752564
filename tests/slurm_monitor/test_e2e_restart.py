"""Nothing lost across a real restart on the real cluster (issue 13): the monitor sees three held
jobs pending and is stopped; meanwhile they run and end (one completes, one exits 3, one is
cancelled while running), two more jobs are submitted, run and end (one completes after some
CPU work, one exits 3), and Slurm purges them all from squeue (MinJobAge); the restarted monitor
resumes from its saved state and asks sacct (slurmdbd) how the known ones ended, and, in one
query for the gap, which jobs it never saw ended meanwhile: each job gets exactly one terminal
event and one notification, with sacct's state and exit code; the never-seen ones also get a
history row whose job page has its efficiency from sacct."""

from __future__ import annotations

import asyncio
import urllib.error

import pytest

from tests.slurm_monitor.test_position import rest

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


def accounted(url: str, token: str) -> bool:
    """The job page has sacct's accounting (404 until the row is saved, after the events)."""
    try:
        return rest(url, token)["accounting"] is not None
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise
        return False


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

        # While it is down: they run and end, two jobs it never sees come and go, and squeue
        # forgets them all.
        # some CPU time, and at least 2 s elapsed (a job done within the second has 0 elapsed)
        unseen_done = sbatch("gap-busy", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; sleep 2")
        unseen_failing = sbatch("gap-exit3", "sleep 1; exit 3")
        for job_id in (done, failing, doomed):
            slurm("scontrol", "release", job_id)
        await asyncio.to_thread(wait_until, lambda: job_state(doomed) == "RUNNING", f"job {doomed} running")
        slurm("scancel", doomed)
        gone = (done, failing, doomed, unseen_done, unseen_failing)
        await asyncio.to_thread(wait_until, lambda: not any(in_squeue(j) for j in gone),
                                "Slurm to purge the ended jobs from squeue (MinJobAge)", 240)

        second = monitor_process(args, env, name="monitor-restart-b")
        for kind, job_id in (("job_completed", done), ("job_failed", failing), ("job_cancelled", doomed),
                             ("job_completed", unseen_done), ("job_failed", unseen_failing)):
            await client.wait_for(lambda f, k=kind, j=job_id: is_note(f, k, j, "user:root"), timeout=120)
        polls = second.log_text().count("jobs poll:")
        await asyncio.to_thread(second.wait_for_log, "jobs poll:", polls + 3)  # nothing may come twice
        # the never-seen job's page: its row, and the efficiency of sacct's accounting (asked
        # by the history step after the gap query, which is -X: without the steps' usage)
        url = f"{server.url}/api/cluster/jobs/{unseen_done}"
        await asyncio.to_thread(wait_until, lambda: accounted(url, root_token), f"job {unseen_done}'s accounting", 60)
        page = await asyncio.to_thread(rest, url, root_token)
        assert await asyncio.to_thread(second.stop) == 0
        log = second.log_text()
        assert "ended out of squeue's sight (sacct)" in log  # purged: only sacct could tell
        assert log.count("gap: ") == 1 and "of them never seen: reported" in log  # one query for the gap
    finally:
        await asyncio.to_thread(clean_cluster, node)
    await client.close()
    frames = client.publications()

    expected = {done: ("COMPLETED", 0), failing: ("FAILED", 3), doomed: ("CANCELLED", None),
                unseen_done: ("COMPLETED", 0), unseen_failing: ("FAILED", 3)}
    for channel in CHANNELS:
        for job_id, (state, _code) in expected.items():
            # a job seen pending ends by a state change; one never seen arrives with its end
            kind = "job_submitted" if job_id in (unseen_done, unseen_failing) else "job_state_changed"
            endings = [(f["type"], f["data"]["state"]) for f in frames
                       if f["type"] != "job_removed" and is_job(f, f["type"], job_id, channel=channel)
                       and f["data"]["state"] in TERMINAL]
            assert endings == [(kind, state)], (channel, job_id, endings)
    # every job here is root's: other jobs on the shared cluster notify user:root too
    ours = [f["data"] for f in frames if f["type"] == "notification" and f["data"]["data"].get("job_id") in expected]
    notes = {note["data"]["job_id"]: note for note in ours}
    kinds = [(note["type"], note["data"]["job_id"]) for note in ours]
    assert sorted(kinds) == sorted([("job_completed", done), ("job_failed", failing), ("job_cancelled", doomed),
                                    ("job_completed", unseen_done), ("job_failed", unseen_failing)])
    for job_id, (_state, code) in expected.items():
        if code is not None:  # sacct's word: 22.05's JSON lost it, the text has it
            assert notes[job_id]["data"]["exit_code"] == code, (job_id, notes[job_id])

    assert page["job"]["state"] == "COMPLETED" and page["job"]["name"] == "hub-e2e-gap-busy"
    assert [t["state"] for t in page["transitions"]] == ["COMPLETED"]
    cpu = page["efficiency"]["cpu"]  # the busy loop's CPU time, against elapsed x CPUs
    assert cpu["used_seconds"] > 0 and cpu["available_seconds"] >= 2 and cpu["percent"] is not None, page
    assert page["efficiency"]["memory"]["requested_mb"] > 0, page
