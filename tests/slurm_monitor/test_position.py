"""Zero-gap first paint (PROTOCOL.md section 6, ``position``): the rows of a REST answer and the
stream position they include are saved in one transaction, so a client that reads REST and then
subscribes with ``since`` = that offset gets every later event exactly once.

The race test runs the real path: the monitor as a process (``--sink layer``: hub.publish into
Redis; or ``--sink http``) fed by a fake squeue that changes every poll, a real daphne serving REST and WebSocket,
and page loads started while publications are in flight."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest
import websockets
from asgiref.sync import sync_to_async

from slurm_monitor import store_read
from slurm_monitor.collector import SlurmCollector
from slurm_monitor.monitor import Monitor
from slurm_monitor.sinks import HttpSink
from tests.slurm_monitor import shapes
from tests.slurm_monitor.test_monitor import RecordingSink, ScriptedSlurm, squeue

STEPS = 14


def step_jobs(k: int) -> list[dict]:
    """Jobs 1..k: the newest pending, the others running (each step: one job_submitted and one
    job_state_changed)."""
    base = shapes.JOBS[0]
    return [dict(base, id=1000 + i, state="PENDING" if i == k else "RUNNING",
                 nodes="" if i == k else "gpu01", start=0 if i == k else 1700000100)
            for i in range(1, k + 1)]


def rest(url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}",
                                                   "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=20) as answer:
        return json.loads(answer.read())


class PageLoad:
    """What a dashboard does: REST first paint, then subscribe ``since`` its position."""

    def __init__(self, server, token: str) -> None:
        self.server, self.token = server, token
        self.frames: list[dict] = []

    async def run(self, stop: asyncio.Event) -> None:
        body = await asyncio.to_thread(rest, f"{self.server.url}/api/cluster/jobs?view=active", self.token)
        self.rows = {j["job_id"]: j["state"] for j in body["results"]}
        self.position = body["position"]["jobs"]
        async with websockets.connect(f"{self.server.ws_url}/ws/?token={self.token}", open_timeout=15) as ws:
            await ws.send(json.dumps({"type": "subscribe", "channel": "jobs", "since": self.position["offset"]}))
            while not stop.is_set() or not self._caught_up():
                try:
                    self.frames.append(json.loads(await asyncio.wait_for(ws.recv(), 0.5)))
                except asyncio.TimeoutError:
                    continue

    def _caught_up(self) -> bool:
        return any(f.get("offset") == self.final_offset for f in self.events()) or \
            self.position["offset"] == self.final_offset

    def events(self) -> list[dict]:
        return [f for f in self.frames if f.get("channel") == "jobs" and "offset" in f
                and f["type"] not in ("subscribed", "recovered")]

    def replayed_state(self) -> dict[str, str]:
        rows = dict(self.rows)
        for frame in self.events():
            data = frame["data"]
            if frame["type"] in ("job_submitted", "job_state_changed"):
                rows[data["job_id"]] = data["state"]
            elif frame["type"] == "job_removed":
                rows.pop(data["job_id"], None)
        return rows


@pytest.fixture
def alice_token(make_user):
    return make_user("alice", staff=True)[1]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("sink", ["layer", "http"])
async def test_rest_then_since_misses_nothing_and_repeats_nothing(sink, alice_token, hub_server, redis_url,
                                                                  fake_slurm, monitor_process):
    """``layer``: the sink reads each epoch right after publishing. ``http`` (the embedded hub,
    no Redis): the broadcast answer carries no epoch, so daphne fills it in from its own history
    when serving REST (``apis._fill_epochs``)."""
    token = alice_token
    env = {"REDIS_URL": redis_url} if sink == "layer" else {}
    server = hub_server(env={**env, "HUB_MAX_CONNECTIONS_PER_USER": "100", "HUB_API_RATE_LIMIT": "100000/s"})
    monitor = monitor_process(["--jobs-interval", "0.1", "--nodes-interval", "5", "--metrics-interval", "30",
                               "--sink", sink, "--hub-url", server.url],
                              {**env, "SLURM_MONITOR_BIN_DIR": fake_slurm.dir}, name=f"monitor-position-{sink}")
    await asyncio.to_thread(monitor.wait_for_log, "jobs poll:")
    fake_slurm.set_jobs(step_jobs(1))
    while (await asyncio.to_thread(rest, f"{server.url}/api/cluster/jobs", token))["position"]["jobs"] is None:
        await asyncio.sleep(0.05)

    stop = asyncio.Event()
    loads: list[PageLoad] = []
    tasks = []

    async def saved(k: int) -> dict:
        """The REST answer once the monitor has published and saved step ``k``."""
        want = {str(1000 + i): ("PENDING" if i == k else "RUNNING") for i in range(1, k + 1)}
        while True:
            body = await asyncio.to_thread(rest, f"{server.url}/api/cluster/jobs", token)
            if {j["job_id"]: j["state"] for j in body["results"]} == want:
                return body
            await asyncio.sleep(0.05)

    for k in range(2, STEPS + 1):  # each step races two page loads against the monitor's poll
        fake_slurm.set_jobs(step_jobs(k))
        for _ in range(2):
            load = PageLoad(server, token)
            loads.append(load)
            tasks.append(asyncio.create_task(load.run(stop)))
            await asyncio.sleep(0.06)  # pacing: page loads staggered across the monitor's polls
        # The next step once this one is saved: paced by the monitor, not by a clock (a slow
        # monitor would otherwise fold several steps into one poll, and the loads into few
        # positions).
        body = await saved(k)
    final = {str(1000 + i): ("PENDING" if i == STEPS else "RUNNING") for i in range(1, STEPS + 1)}
    epoch = body["position"]["jobs"]["epoch"]
    for load in loads:
        load.final_offset = body["position"]["jobs"]["offset"]
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    assert monitor.stop() == 0

    assert epoch  # known: read by the layer sink, or filled in by daphne
    positions = {load.position["offset"] for load in loads}
    assert len(positions) > 3, "the page loads did not race the publications"
    for load in loads:
        offsets = [f["offset"] for f in load.events()]
        # exactly once: every publication after the position, in order, none twice, none missing
        assert offsets == list(range(load.position["offset"] + 1, load.final_offset + 1))
        assert load.replayed_state() == final
        subscribed = next(f for f in load.frames if f["type"] == "subscribed")
        assert subscribed["epoch"] == load.position["epoch"] == epoch
        assert any(f["type"] == "recovered" and f["recovered"] for f in load.frames)


# --- the monitor hands each save the positions its publications got -----------------------------


class EpochSink(RecordingSink):
    async def epochs_for(self, offsets):
        return {channel: f"epoch-of-{channel}" for channel in offsets}


@pytest.mark.django_db(transaction=True)
async def test_each_save_carries_the_offsets_of_its_own_publications():
    runner = ScriptedSlurm("24.05", [squeue("24.05", shapes.JOBS[:1]),
                                     squeue("24.05", shapes.with_changes(shapes.JOBS[:1], "id", 101, state="RUNNING"))])
    sink = EpochSink()
    monitor = Monitor(SlurmCollector(runner=runner), sink, source="test")
    await monitor.poll_jobs()  # baseline: nothing published
    await monitor.poll_nodes()  # baseline, but cn03 is down: an alert
    await monitor.publish_metrics()
    await monitor.poll_jobs()  # 101 PENDING -> RUNNING, on jobs and user:alice

    def positions():
        return {**store_read.list_jobs()["position"], **store_read.list_jobs(channels=["user:alice"])["position"],
                **store_read.list_nodes()["position"], **store_read.get_metrics()["position"],
                **store_read.list_alerts()["position"]}

    sent = {channel: n for n, (channel, _e, _k) in enumerate(sink.sent, 1)}  # RecordingSink: offset = count
    assert await sync_to_async(positions)() == {
        "jobs": {"offset": sent["jobs"], "epoch": "epoch-of-jobs"},
        "user:alice": {"offset": sent["user:alice"], "epoch": "epoch-of-user:alice"},
        "nodes": None,  # nothing published on nodes yet
        "metrics": {"offset": sent["metrics"], "epoch": "epoch-of-metrics"},
        "alerts": {"offset": sent["alerts"], "epoch": "epoch-of-alerts"},
    }


def test_the_http_sink_keeps_the_epoch_a_broadcast_answer_carries():
    sink = HttpSink("http://127.0.0.1:1", "t")

    def post(path, body, token):
        return 200, {"success": True, "channel": body.get("channel") or f"user:{body['user']}", "offset": 7,
                     "epoch": "k2f8"}

    sink._post_sync = post
    assert asyncio.run(sink.publish("jobs", "job_submitted", {})) == 7
    assert asyncio.run(sink.epochs_for({"jobs": 7, "nodes": 3})) == {"jobs": "k2f8", "nodes": None}
