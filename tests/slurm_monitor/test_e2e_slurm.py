"""End to end on a real Slurm: sbatch/scancel/scontrol on the one-node cluster that
``scripts/setup-slurm`` brings up, the monitor as a process, daphne as a process, and a
WebSocket client that must see every expected event exactly once.

The sleeping jobs are submitted held and then released, so the test sees them PENDING first
whatever the scheduler's speed (the job that exits 3 is not: it may be first seen finished).
"""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest

from tests.slurm_monitor.wsclient import Subscriber

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(400)]

PREFIX = "hub-e2e"
CHANNELS = ["jobs", "nodes", "notifications", "user:root"]


def slurm(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{' '.join(args)} failed: {done.stderr}"
    return done.stdout.strip()


def node_state(node: str) -> str:
    return slurm("sinfo", "-h", "-N", "-n", node, "-o", "%T")


def wait_until(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def clean_cluster(node: str) -> None:
    """Leftovers of an interrupted run: our jobs cancelled, the node resumed and idle."""
    for job_id in slurm("squeue", "-h", "-u", "root", "-o", "%i %j").splitlines():
        number, _, name = job_id.partition(" ")
        if name.startswith(PREFIX):
            slurm("scancel", number)
    state = node_state(node)
    if "drain" in state or state.startswith(("down", "fail")):
        slurm("scontrol", "update", f"nodename={node}", "state=resume")
    wait_until(lambda: node_state(node) == "idle", f"node {node} idle")


def sbatch(name: str, script: str, hold: bool = False) -> str:
    args = ["sbatch", "--parsable", "-J", f"{PREFIX}-{name}", "-o", "/dev/null", "--chdir", "/tmp"]
    return slurm(*args, *(["--hold"] if hold else []), "--wrap", script).split(";")[0]


@pytest.fixture
def root_token(make_user):
    """Jobs run as root here, so the Slurm user and the hub user are "root"."""
    return make_user("root")[1]


def is_job(frame, event, job_id, state=None, channel="jobs"):
    return ("data" in frame and frame["type"] == event and frame["channel"] == channel
            and frame["data"].get("job_id") == job_id
            and (state is None or frame["data"].get("state") == state))


def is_note(frame, kind, key, channel="notifications"):
    data = frame.get("data") or {}
    return (frame["type"] == "notification" and frame["channel"] == channel and data["type"] == kind
            and key in (data["data"].get("job_id"), data["data"].get("node")))


async def test_real_slurm_jobs_and_node_events_exactly_once(slurm_cluster, root_token, hub_server,
                                                            monitor_process):
    node = slurm_cluster["node"]
    await asyncio.to_thread(clean_cluster, node)
    server = hub_server()
    monitor = monitor_process(["--jobs-interval", "1", "--nodes-interval", "1", "--metrics-interval", "5",
                               "--hub-url", server.url], name="monitor-e2e")
    await asyncio.to_thread(monitor.wait_for_log, "jobs poll:")
    await asyncio.to_thread(monitor.wait_for_log, "nodes poll:")
    client = await Subscriber.open(server.ws_url, root_token, CHANNELS)
    try:
        sleeper = sbatch("sleep", "sleep 4", hold=True)
        failing = sbatch("exit3", "exit 3")
        doomed = sbatch("cancel", "sleep 300", hold=True)
        for job_id in (sleeper, doomed):
            await client.wait_for(lambda f, j=job_id: is_job(f, "job_submitted", j, "PENDING"))
        slurm("scontrol", "release", sleeper)
        slurm("scontrol", "release", doomed)
        for job_id in (sleeper, doomed):
            await client.wait_for(lambda f, j=job_id: is_job(f, "job_state_changed", j, "RUNNING"))
        slurm("scancel", doomed)
        await client.wait_for(lambda f: is_note(f, "job_cancelled", doomed, "user:root"))
        await client.wait_for(lambda f: is_note(f, "job_completed", sleeper, "user:root"))
        failed = await client.wait_for(lambda f: is_note(f, "job_failed", failing, "user:root"))
        assert failed["data"]["data"]["exit_code"] == 3

        await asyncio.to_thread(wait_until, lambda: node_state(node) == "idle", f"node {node} idle")
        slurm("scontrol", "update", f"nodename={node}", "state=drain", f"reason={PREFIX}")
        await client.wait_for(lambda f: f["type"] == "node_state_changed"
                              and f["data"]["state"] == "DRAINED")
        await client.wait_for(lambda f: is_note(f, "node_drained", node))
        slurm("scontrol", "update", f"nodename={node}", "state=resume")
        await client.wait_for(lambda f: f["type"] == "node_state_changed"
                              and f["data"]["previous_state"] == "DRAINED" and f["data"]["state"] == "IDLE")
        # A few more polls of each stream: nothing may be sent twice.
        # Each stream counted on its own: their cadences drift apart (a stretched interval, the
        # jobs tiers), so the nodes count need not be near the jobs count.
        log = monitor.log_text()
        for stream in ("jobs poll:", "nodes poll:"):
            await asyncio.to_thread(monitor.wait_for_log, stream, log.count(stream) + 3)
    finally:
        await asyncio.to_thread(clean_cluster, node)
    log = monitor.log_text()
    # Tiered: on 22.05 the text state tier runs every poll; with nothing new it is all there is.
    assert "jobs poll: state tier" in log and "jobs poll: full tier" in log, log[-3000:]
    assert await asyncio.to_thread(monitor.stop) == 0
    await client.close()

    frames = client.publications()

    def count(predicate) -> int:
        return sum(1 for f in frames if predicate(f))

    for channel in ("jobs", "user:root"):
        for job_id in (sleeper, failing, doomed):
            assert count(lambda f: is_job(f, "job_submitted", job_id, channel=channel)) == 1, (channel, job_id)
        for job_id, state in ((sleeper, "RUNNING"), (sleeper, "COMPLETED"), (doomed, "RUNNING"),
                              (doomed, "CANCELLED")):
            assert count(lambda f: is_job(f, "job_state_changed", job_id, state, channel)) == 1, (job_id, state)
        # the failing job may be first seen already FAILED: then job_submitted carries it
        # (its job_removed, once slurmctld purges it after MinJobAge=10 s, carries FAILED too)
        assert count(lambda f: f["channel"] == channel and f["data"].get("job_id") == failing
                     and f["type"] != "job_removed" and f["data"].get("state") == "FAILED") == 1
        for kind, key in (("job_completed", sleeper), ("job_failed", failing), ("job_cancelled", doomed)):
            # a user's notification goes to user:<name> only, never to the shared channel
            shared = "notifications" if channel == "jobs" else channel
            assert count(lambda f: is_note(f, kind, key, shared)) == (0 if channel == "jobs" else 1)
    assert count(lambda f: is_note(f, "node_drained", node)) == 1
    node_changes = [(f["data"]["previous_state"], f["data"]["state"]) for f in frames
                    if f["type"] == "node_state_changed"]
    assert sum(1 for _, state in node_changes if state == "DRAINED") == 1, node_changes
    assert node_changes.count(("DRAINED", "IDLE")) == 1, node_changes
