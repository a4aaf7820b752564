"""The dashboard in a real browser (Debian's chromium via Playwright) against a live daphne,
fed by ``run_slurm_monitor --mock`` where the test needs a cluster.

Waits are generous (the simulated cluster runs in real time); nothing here measures speed.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest

from tests.dashboard.conftest import PASSWORD, api, login, orm, screenshot_path, wait_following

pytestmark = pytest.mark.usefixtures("transactional_db")

LIFECYCLE_TIMEOUT_MS = 300_000

# A job this page saw PENDING, then RUNNING, then COMPLETED, always in the same <tr>.
FIND_LIFECYCLE = """
() => {
  for (const [id, h] of Object.entries(window.__jobHistory)) {
    const p = h.states.indexOf("PENDING");
    const r = h.states.indexOf("RUNNING", p + 1);
    const c = h.states.indexOf("COMPLETED", r + 1);
    if (p === 0 && r > p && c > r) return { id, states: h.states, rows: h.rows };
  }
  return null;
}
"""

DOM_JOB_STATES = """
() => Object.fromEntries([...document.querySelectorAll("#jobs-body tr[data-job-id]")]
  .map((tr) => [tr.dataset.jobId, tr.dataset.state]))
"""


def rest_job_states(page) -> dict[str, str]:
    body = page.evaluate("() => fetch('/api/cluster/jobs?limit=5000').then((r) => r.json())")
    return {job["job_id"]: job["state"] for job in body["results"]}


@pytest.mark.timeout(480)
def test_job_goes_pending_running_completed_without_reload(hub_server, slurm_monitor, make_user, pages):
    server = hub_server()
    slurm_monitor(server.url, seed=10)
    orm(make_user, "alice", staff=True)
    page = pages.open()
    login(page, server.url, "alice")
    page_id = page.evaluate("window.__pageId")
    page.wait_for_selector("#jobs-body tr[data-job-id]", timeout=60_000)

    found = page.wait_for_function(FIND_LIFECYCLE, timeout=LIFECYCLE_TIMEOUT_MS).json_value()

    assert len(found["rows"]) == 1, f"job {found['id']} changed rows instead of updating in place: {found}"
    row = page.locator(f'#jobs-body tr[data-job-id="{found["id"]}"]')
    assert row.get_attribute("data-state") == "COMPLETED"
    assert row.locator(".pill").inner_text() == "Completed"
    assert page.evaluate("window.__pageId") == page_id, "the page reloaded"
    # The rest of the page is live too: nodes, metrics, connection.
    assert page.locator("#nodes-grid .node").count() >= 1
    assert page.locator('[data-metric="cpuUtil"] .metric-value').inner_text().endswith("%")
    assert page.locator("#connection-text").inner_text() == "Live"
    assert page.evaluate("window.dashboardHub.connectedCount") == 1
    assert not pages.page_errors()

    # The README's picture: wait for a few metrics samples so the sparklines have a shape.
    page.wait_for_function("() => JSON.parse(sessionStorage.getItem('dashboard.metrics.v1') || '[]').length >= 10",
                           timeout=60_000)
    page.screenshot(path=str(screenshot_path()), full_page=True)


@pytest.mark.timeout(480)
@pytest.mark.parametrize("mode", ["embedded", "redis"])
def test_reconnects_and_catches_up_after_hub_restart(mode, hub_server, slurm_monitor, make_user, pages,
                                                      request):
    """Embedded: the restarted hub has a new history epoch, so the page reloads over REST.
    Redis: the monitor keeps publishing into Redis while daphne is down, and the page
    resubscribes with ``since`` and gets the missed events replayed (recovered: true)."""
    from slurm_monitor.models import ClusterJob

    if mode == "redis":
        env = {"REDIS_URL": request.getfixturevalue("redis_url"),
               "HUB_CHANNEL_PREFIX": f"dash{os.getpid()}{uuid.uuid4().hex[:8]}"}
        server = hub_server(env)
        monitor = slurm_monitor(server.url, seed=10, sink="layer", env=env)
    else:
        server = hub_server()
        monitor = slurm_monitor(server.url, seed=10)
    orm(make_user, "alice")
    # The page starts from the monitor's first save, so the table it shows first (``before``)
    # is the whole queue, not the rows events brought until it hears of that save.
    monitor.wait_first_save()
    page = pages.open()
    login(page, server.url, "alice")
    page_id = page.evaluate("window.__pageId")
    page.evaluate("""() => {
      window.__recovery = [];
      dashboardHub.on("reset", (e) => __recovery.push({ kind: "reset", channel: e.channel }));
      dashboardHub.on("recovered",
        (e) => __recovery.push({ kind: "recovered", channel: e.channel, recovered: e.recovered }));
    }""")
    page.wait_for_selector("#jobs-body tr[data-job-id]", timeout=60_000)
    before = page.evaluate(DOM_JOB_STATES)

    server.stop()
    page.wait_for_selector('#connection:not([data-state="connected"])', timeout=60_000)
    # Keep the hub down until the cluster has moved on (the monitor still records it). Only
    # the jobs still queued, as the table and the REST answer list them: the store keeps the
    # jobs that left as history, so comparing every row would pass at once after the first.
    deadline = time.monotonic() + 180
    while True:
        stored = orm(lambda: dict(ClusterJob.objects.filter(left_queue_at__isnull=True)
                                  .values_list("job_id", "state")))
        if stored and stored != before:
            break
        assert time.monotonic() < deadline, "the simulated cluster did not change while the hub was down"
        time.sleep(0.5)
    assert page.locator("#connection").get_attribute("data-state") in {"reconnecting", "connecting", "open"}

    server.start()
    page.wait_for_selector('#connection[data-state="connected"]', timeout=120_000)

    # Caught up: the table matches what the cluster says now (it keeps moving, so retry).
    deadline = time.monotonic() + 90
    while True:
        shown, truth = page.evaluate(DOM_JOB_STATES), rest_job_states(page)
        if shown == truth:
            break
        assert time.monotonic() < deadline, f"page never caught up:\nshown={shown}\ntruth={truth}"
        time.sleep(0.5)
    assert shown != before
    assert page.evaluate("window.__pageId") == page_id, "the page reloaded"
    assert page.evaluate("window.dashboardHub.connectedCount") >= 2
    # "recovered" follows the replayed publications in their own frame: the table can match
    # before the page has read it.
    expected = "recovered" if mode == "redis" else "reset"
    recovery = page.wait_for_function(
        "(kind) => { const r = window.__recovery.filter((e) => e.channel === 'jobs');"
        " return r.some((e) => e.kind === kind) && r; }", arg=expected).json_value()
    if mode == "redis":
        assert {"kind": "recovered", "channel": "jobs", "recovered": True} in recovery, recovery
        assert not [r for r in recovery if r["kind"] == "reset"], recovery
    else:
        assert any(r["kind"] == "reset" for r in recovery), recovery
    # The badge says "Live" once the replay has refreshed every stream's age (it re-reads the
    # ages every second; the hub may have been down longer than the 10 s allowance).
    page.wait_for_function("document.getElementById('connection-text').textContent === 'Live'")
    assert not pages.page_errors()


@pytest.mark.timeout(180)
def test_notification_arrives_and_is_marked_read(hub_server, make_user, pages):
    server = hub_server()
    _, alice_token = orm(make_user, "alice")
    _, bob_token = orm(make_user, "bob")
    page = pages.open()
    login(page, server.url, "alice")
    badge = page.locator("#unread-badge")
    assert badge.is_hidden()
    assert page.locator("#notifications-empty").is_visible()

    mine = api(server.url, "/api/notifications", alice_token,
               {"type": "backup_done", "title": "Backup finished", "message": "All 3 volumes copied.",
                "severity": "success"})
    item = page.locator(f'li[data-notification-id="{mine["id"]}"]')
    item.wait_for()
    assert "unread" in item.get_attribute("class")
    assert item.locator(".n-title").inner_text() == "Backup finished"
    assert item.locator(".n-message").inner_text() == "All 3 volumes copied."
    assert badge.inner_text() == "1"
    assert page.title() == "(1) Cluster hub"

    # Someone else's notification (sent to user:bob only) stays off this page.
    api(server.url, "/api/notifications", bob_token, {"type": "note", "title": "For bob only"})
    second = api(server.url, "/api/notifications", alice_token,
                 {"type": "note", "title": "Quota at 80%", "severity": "warning"})
    page.locator(f'li[data-notification-id="{second["id"]}"]').wait_for()
    assert page.locator("#notifications-list").inner_text().count("For bob only") == 0
    assert badge.inner_text() == "2"

    item.locator("button.n-read").click()
    page.wait_for_function(f"""() => !document.querySelector('li[data-notification-id="{mine["id"]}"]')
                                     .classList.contains('unread')""")
    assert badge.inner_text() == "1"
    deadline = time.monotonic() + 30
    while not next(n for n in api(server.url, "/api/notifications", alice_token)["results"]
                   if n["id"] == mine["id"])["read"]:
        assert time.monotonic() < deadline, "the server never recorded the read"
        time.sleep(0.2)

    page.click("#mark-all-read")
    badge.wait_for(state="hidden")
    page.reload()
    page.wait_for_selector('#connection[data-state="connected"]')
    page.locator(f'li[data-notification-id="{second["id"]}"]').wait_for()
    assert page.locator("#notifications-list li.unread").count() == 0
    assert badge.is_hidden()
    assert api(server.url, "/api/notifications", alice_token)["unread"] == 0
    assert not pages.page_errors()


@pytest.mark.timeout(180)
def test_staff_alerts_job_filters_and_phone_layout(hub_server, make_user, pages):
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    server = hub_server()

    def make_superuser() -> str:
        root = get_user_model().objects.create_superuser("root", "root@example.org", PASSWORD)
        return Token.objects.create(user=root).key

    root_token = orm(make_superuser)
    orm(make_user, "bob")
    staff_page = pages.open()
    login(staff_page, server.url, "root")
    phone = pages.open(viewport=(390, 844), color_scheme="dark")
    login(phone, server.url, "bob")
    # The events below are backed by no stored row: publish once each page follows them.
    wait_following(staff_page, "alerts", "jobs", "nodes")
    wait_following(phone, "jobs", "nodes")
    assert "alerts" not in [c["name"] for c in phone.evaluate("dashboardHub.channels()")]

    def broadcast(channel: str, event: str, data: dict) -> None:
        api(server.url, "/api/broadcast", root_token, {"channel": channel, "message": {"type": event, "data": data}})

    broadcast("alerts", "alert", {"alert_id": "nodes_down", "severity": "critical", "message": "2 node(s) down",
                                  "value": 2, "threshold": 0, "raised_at": "2026-11-22T10:00:00.000Z"})
    banner = staff_page.locator('#alerts .alert[data-alert-id="nodes_down"]')
    banner.wait_for()
    assert "2 node(s) down" in banner.inner_text()
    assert banner.get_attribute("data-severity") == "critical"

    long_name = "a-very-long-job-name-that-must-not-widen-the-page-" * 2
    broadcast("jobs", "job_submitted", {"job_id": "77", "name": long_name, "user": "bob", "partition": "gpu",
                                        "state": "PENDING", "reason": "Resources", "cpus": 64, "gpus": 8})
    broadcast("nodes", "node_added", {"node": "gpu-node-with-a-long-name-01", "state": "MIXED", "flags": [],
                                      "cpus": 64, "alloc_cpus": 32, "real_memory_mb": 524288,
                                      "alloc_memory_mb": 131072, "gpus": 4, "alloc_gpus": 3})
    phone.locator('#jobs-body tr[data-job-id="77"]').wait_for()
    phone.locator('.node[data-node="gpu-node-with-a-long-name-01"]').wait_for()
    assert phone.locator("#alerts").is_hidden(), "alerts are for staff"
    overflow = phone.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the phone layout scrolls sideways by {overflow}px"
    gpu_bar = phone.locator('.node[data-node="gpu-node-with-a-long-name-01"] [data-bar="gpu"] .bar-value')
    assert gpu_bar.inner_text() == "3 / 4"

    broadcast("alerts", "alert_resolved", {"alert_id": "nodes_down", "message": "No node is down any more"})
    staff_page.locator("#alerts").wait_for(state="hidden")

    # Filters: user, partition, state (and the URL remembers them).
    for job_id, user, partition, state in [("78", "root", "cpu", "RUNNING"), ("79", "carol", "cpu", "COMPLETED"),
                                           ("80", "carol", "gpu", "RUNNING")]:
        broadcast("jobs", "job_submitted", {"job_id": job_id, "name": f"job{job_id}", "user": user,
                                            "partition": partition, "state": state})
    staff_page.locator('#jobs-body tr[data-job-id="80"]').wait_for()

    def shown() -> list[str]:
        return staff_page.eval_on_selector_all("#jobs-body tr[data-job-id]", "rows => rows.map(r => r.dataset.jobId)")

    assert shown() == ["80", "79", "78", "77"]
    staff_page.select_option("#filter-user", "carol")
    staff_page.wait_for_function("document.querySelectorAll('#jobs-body tr[data-job-id]').length === 2")
    assert shown() == ["80", "79"]
    staff_page.select_option("#filter-partition", "cpu")
    staff_page.wait_for_function("document.querySelectorAll('#jobs-body tr[data-job-id]').length === 1")
    assert shown() == ["79"]
    assert "user=carol" in staff_page.url and "partition=cpu" in staff_page.url
    staff_page.select_option("#filter-user", "")
    staff_page.select_option("#filter-partition", "")
    staff_page.select_option("#filter-state", "RUNNING")
    staff_page.wait_for_function("document.querySelectorAll('#jobs-body tr[data-job-id]').length === 2")
    assert shown() == ["80", "78"]
    staff_page.select_option("#filter-state", "ACTIVE")
    staff_page.wait_for_function("document.querySelectorAll('#jobs-body tr[data-job-id]').length === 3")
    assert shown() == ["80", "78", "77"]
    staff_page.select_option("#filter-user", "root")  # "Mine"
    staff_page.wait_for_function("document.querySelectorAll('#jobs-body tr[data-job-id]').length === 1")
    assert shown() == ["78"]
    assert staff_page.locator("#jobs-count").inner_text() == "1 of 4"
    staff_page.fill("#filter-q", "nothing-matches")
    staff_page.locator("#jobs-empty").wait_for()
    assert not pages.page_errors()


@pytest.mark.timeout(180)
def test_client_answers_heartbeats_and_works_at_the_server_root(hub_server, make_user, pages):
    """hub-client.js in the browser: the hub closes sockets that stay silent for
    HUB_CONNECTION_TIMEOUT (6 s here) and sends a heartbeat every second; the client's pongs
    keep both the dashboard's socket and a second client on the server root (``/``) open for
    8 beats, past the timeout (3 s left little room for a pong delayed on a loaded machine)."""
    server = hub_server({"HUB_HEARTBEAT_INTERVAL": "1", "HUB_CONNECTION_TIMEOUT": "6"})
    orm(make_user, "alice")
    page = pages.open()
    login(page, server.url, "alice")
    reply = page.evaluate("""async () => {
      const { connect } = await import("/static/hub/hub-client.js");
      const root = connect("/");
      window.rootClient = root;
      window.rootBeats = 0;
      root.on("heartbeat", () => { window.rootBeats += 1; });
      await new Promise((resolve) => root.once("connected", resolve));
      return { url: root.url, pong: (await root.ping()).type, user: root.user };
    }""")
    assert reply == {"url": f"{server.ws_url}/", "pong": "pong", "user": "alice"}

    # The control: a bare socket that never answers is closed by the hub (4008).
    page.evaluate("""() => {
      window.silentClose = null;
      const ws = new WebSocket(location.origin.replace("http", "ws") + "/ws/");
      ws.onclose = (event) => { window.silentClose = event.code; };
    }""")
    assert page.wait_for_function("window.silentClose", timeout=60_000).json_value() == 4008
    page.wait_for_function("window.rootBeats >= 8", timeout=60_000)
    assert page.evaluate("window.dashboardHub.connectedCount") == 1, "the dashboard's socket was dropped"
    assert page.evaluate("window.rootClient.connectedCount") == 1, "the root client's socket was dropped"
    assert page.evaluate("window.rootClient.state") == "connected"
    assert page.locator('#connection[data-state="connected"]').count() == 1
    assert not pages.page_errors()
