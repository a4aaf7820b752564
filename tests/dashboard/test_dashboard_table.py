"""The dashboard's jobs table, node panel, banner and first paint in a real browser (Debian's
chromium via Playwright) against a live daphne. Rows are saved with the monitor's own store
(``slurm_monitor.store``) and events published through the hub's REST API as the monitor's
``http`` sink does, by an account holding ``hub.broadcast``.
"""

from __future__ import annotations

import pytest

from tests.dashboard.conftest import PASSWORD, api, login, orm, wait_following

pytestmark = pytest.mark.usefixtures("transactional_db")

ROWS_IN_DOM = "document.querySelectorAll('#jobs-body tr[data-job-id], #jobs-body tr[data-array-id]').length"


def superuser_token() -> str:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    root = get_user_model().objects.create_superuser("root", "root@example.org", PASSWORD)
    return Token.objects.create(user=root).key


def job(job_id: int, **fields):
    from slurm_monitor.snapshot import Job

    base = dict(job_id=str(job_id), name=f"job{job_id}", user="alice", partition="cpu", state="PENDING",
                reason="Priority", nodes="", node_count=1, cpus=1 + job_id % 7, gpus=0, memory_mb=100,
                submit_time=1_700_000_000 + job_id, start_time=None, end_time=None,
                time_limit_minutes=60, exit_code=None, signal=None)
    base.update(fields)
    return Job(**base)


def save_jobs(jobs: dict, positions: dict | None = None) -> None:
    from slurm_monitor import store

    store.save_jobs(None, jobs, "test", positions=positions)


@pytest.mark.timeout(240)
def test_a_12000_job_queue_is_windowed_sorted_with_aria_sort_and_scrolls(hub_server, make_user, pages):
    server = hub_server()
    orm(make_user, "alice")
    orm(save_jobs, {str(i): job(i, state="RUNNING" if i % 3 == 0 else "PENDING") for i in range(1, 12_001)})
    page = pages.open()
    login(page, server.url, "alice")
    page.wait_for_function("document.getElementById('jobs-count').textContent === '12000'", timeout=60_000)
    in_dom = page.evaluate(ROWS_IN_DOM)
    assert 10 <= in_dom <= 100, f"{in_dom} rows in the DOM for 12,000 jobs: not windowed"
    assert page.locator("#jobs-body tr[data-job-id]").first.get_attribute("data-job-id") == "12000"
    assert page.locator('th[data-col="id"]').get_attribute("aria-sort") == "descending"
    assert page.locator("#jobs-table").get_attribute("aria-rowcount") == "12001"

    # Scroll to the end: the oldest job is rendered, the DOM stays small.
    page.evaluate("() => { const w = document.getElementById('jobs-wrap'); w.scrollTop = w.scrollHeight; }")
    page.locator('#jobs-body tr[data-job-id="1"]').wait_for()
    assert page.evaluate(ROWS_IN_DOM) <= 100

    # Sort by CPUs from the keyboard: Enter on the column's button; aria-sort follows.
    page.evaluate("() => { document.getElementById('jobs-wrap').scrollTop = 0; }")
    page.locator('th[data-col="cpus"] button').focus()
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('th[data-col=\"cpus\"]').getAttribute('aria-sort') === 'descending'")
    assert page.locator('th[data-col="id"]').get_attribute("aria-sort") is None
    cpus = page.eval_on_selector_all("#jobs-body tr[data-job-id] .col-res", "cells => cells.map(c => c.textContent)")
    assert cpus and set(cpus) == {"7"}, cpus
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('th[data-col=\"cpus\"]').getAttribute('aria-sort') === 'ascending'")
    page.wait_for_function("document.querySelector('#jobs-body tr[data-job-id] .col-res').textContent === '1'")
    assert "sort=cpus" in page.url

    # Filter by state: the count says how many of the 12,000.
    page.select_option("#filter-state", "RUNNING")
    page.wait_for_function("document.getElementById('jobs-count').textContent === '4000 of 12000'")
    # A live event for a job off screen changes the counts, not the rows on screen.
    token = orm(superuser_token)
    wait_following(page, "jobs")  # the event is backed by no stored row
    api(server.url, "/api/broadcast", token, {"channel": "jobs", "message": {"type": "job_state_changed", "data": {
        "job_id": "1", "name": "job1", "user": "alice", "partition": "cpu", "state": "RUNNING",
        "previous_state": "PENDING", "reason": None, "nodes": "cn01", "start_time": None, "end_time": None,
        "exit_code": None, "signal": None, "state_flags": [], "display_id": "1", "array_job_id": None,
        "array_task_id": None}}})
    page.wait_for_function("document.getElementById('jobs-count').textContent === '4001 of 12000'")
    assert not pages.page_errors()


@pytest.mark.timeout(240)
def test_first_paint_races_publications_nothing_missed_nothing_twice(hub_server, make_user, pages):
    """Publications race the page load: some land before the REST snapshot (it includes them),
    some while its answer is on the way (after its position). The page applies exactly the
    latter, once each, and ends where the stream is."""
    server = hub_server()
    orm(make_user, "alice")
    token = orm(superuser_token)

    def publish(event: str, data: dict) -> int:
        body = {"channel": "jobs", "message": {"type": event, "data": data}}
        return api(server.url, "/api/broadcast", token, body)["offset"]

    def fields(job_id: str, state: str, **more) -> dict:
        return {"job_id": job_id, "name": f"race{job_id}", "user": "alice", "partition": "cpu", "state": state,
                "reason": None, "nodes": "", "state_flags": [], "display_id": job_id, "array_job_id": None,
                "array_task_id": None, **more}

    # Before the page: 500 submitted and completed; the monitor saved that (its position: o_b).
    publish("job_submitted", fields("500", "PENDING"))
    o_b = publish("job_state_changed", fields("500", "COMPLETED", previous_state="PENDING"))
    orm(save_jobs, {"500": job(500, state="COMPLETED", name="race500"), "501": job(501, name="race501")},
        {"jobs": (o_b, "")})

    raced: list[int] = []
    page = pages.open()

    def while_the_snapshot_travels(route):
        response = route.fetch()  # the snapshot, at position o_b
        if not raced:  # published after it was read, before the page has it
            raced.append(publish("job_state_changed", fields("501", "RUNNING", previous_state="PENDING")))
            raced.append(publish("job_submitted", fields("502", "PENDING")))
        route.fulfill(response=response)

    page.route("**/api/cluster/jobs?*", while_the_snapshot_travels)
    login(page, server.url, "alice")
    page.wait_for_function("""() => {
      const j = window.dashboardJobs && window.dashboardJobs.jobs;
      return j && j.get('500')?.state === 'COMPLETED' && j.get('501')?.state === 'RUNNING' && j.has('502');
    }""")
    assert len(raced) == 2
    applied = page.evaluate("window.dashboardJobs.applied")
    assert applied == raced, f"applied {applied}, published after the snapshot {raced}"

    # Live from here: one more, applied once; the table shows the stream's state.
    later = publish("job_state_changed", fields("502", "RUNNING", previous_state="PENDING"))
    page.locator('#jobs-body tr[data-job-id="502"][data-state="RUNNING"]').wait_for()
    assert page.evaluate("window.dashboardJobs.applied") == [*raced, later]
    assert page.locator('#jobs-body tr[data-job-id="500"]').get_attribute("data-state") == "COMPLETED"
    assert page.evaluate("window.dashboardHub.channels().find(c => c.name === 'jobs').offset") == later
    assert not pages.page_errors()


@pytest.mark.timeout(240)
def test_maintenance_banner_from_all_and_cluster_wide_notification_survives_reload(hub_server, make_user, pages):
    server = hub_server()
    orm(make_user, "alice")
    token = orm(superuser_token)
    page = pages.open()
    login(page, server.url, "alice")
    api(server.url, "/api/broadcast", token, {"channel": "all", "message": {"type": "maintenance", "data": {
        "title": "Maintenance on Friday", "message": "The cluster stops at 08:00 UTC.", "severity": "warning"}}})
    api(server.url, "/api/notifications", token, {"cluster_wide": True, "type": "maintenance",
                                                   "title": "Scratch is read-only", "message": "Until noon.",
                                                   "severity": "warning"})
    banner = page.locator("#announcements")
    banner.locator(".announcement", has_text="Maintenance on Friday").wait_for()
    banner.locator(".announcement", has_text="Scratch is read-only").wait_for()

    page.reload()
    page.wait_for_selector('#connection[data-state="connected"]')
    banner.locator(".announcement", has_text="Maintenance on Friday").wait_for()
    banner.locator(".announcement", has_text="Scratch is read-only").wait_for()

    banner.get_by_role("button", name="Dismiss: Maintenance on Friday").click()
    banner.locator(".announcement", has_text="Maintenance on Friday").wait_for(state="detached")
    page.reload()
    banner.locator(".announcement", has_text="Scratch is read-only").wait_for()
    assert banner.locator(".announcement", has_text="Maintenance on Friday").count() == 0
    assert not pages.page_errors()


@pytest.mark.timeout(240)
def test_node_panel_by_keyboard_and_tiles_keep_state_on_resource_events(hub_server, make_user, pages):
    server = hub_server()
    orm(make_user, "alice")
    token = orm(superuser_token)
    page = pages.open()
    login(page, server.url, "alice")
    wait_following(page, "nodes", "jobs")  # the events below are backed by no stored row

    def broadcast(channel: str, event: str, data: dict) -> None:
        api(server.url, "/api/broadcast", token, {"channel": channel, "message": {"type": event, "data": data}})

    broadcast("nodes", "node_added", {"node": "cn01", "state": "MIXED", "flags": [], "reason": None,
                                      "partitions": ["cpu", "all"], "cpus": 32, "alloc_cpus": 8, "cpu_load": 4.0,
                                      "cpu_load_percent": 12.5, "cpu_alloc_percent": 25.0,
                                      "real_memory_mb": 128000, "alloc_memory_mb": 1000, "free_memory_mb": 100000,
                                      "gpus": 0, "alloc_gpus": 0})
    broadcast("jobs", "job_submitted", {"job_id": "77", "name": "on-cn01", "user": "alice", "partition": "cpu",
                                        "state": "RUNNING", "nodes": "cn[01-02]", "cpus": 8})
    tile = page.locator('.node[data-node="cn01"]')
    tile.wait_for()
    broadcast("nodes", "node_resource_change", {"node": "cn01", "cpus": 32, "alloc_cpus": 24,
                                                "cpu_alloc_percent": 75.0, "previous_cpu_alloc_percent": 25.0,
                                                "cpu_load_percent": 60.0, "previous_cpu_load_percent": 12.5})
    page.wait_for_function("document.querySelector('.node[data-node=\"cn01\"] [data-bar=\"cpu\"] .bar-value')"
                           ".textContent === '24 / 32'")
    assert tile.get_attribute("data-state") == "MIXED", "a resource event must not make the node Unknown"

    tile.focus()
    page.keyboard.press("Enter")
    panel = page.locator("#node-panel")
    panel.wait_for()
    assert page.locator("#node-panel-title").inner_text() == "cn01"
    assert panel.locator('dd[data-fact="state"]').inner_text() == "MIXED"
    assert panel.locator('dd[data-fact="partitions"]').inner_text() == "cpu,all"
    assert panel.locator('dd[data-fact="cpu load"]').inner_text() == "60%"
    # Another channel than the node's events: it may render a frame later.
    panel.locator('#node-panel-jobs a[href="/jobs/77"]').wait_for()
    assert panel.locator('#node-panel-jobs a[href="/jobs/77"]').count() == 1
    page.keyboard.press("Escape")
    panel.wait_for(state="hidden")
    assert page.evaluate("document.activeElement.dataset.node") == "cn01", "focus returns to the tile"
    assert not pages.page_errors()


@pytest.mark.timeout(240)
def test_phone_layout_opens_a_job_by_touching_its_row(hub_server, make_user, pages):
    server = hub_server()
    _, alice_token = orm(make_user, "alice")
    orm(save_jobs, {"41": job(41, name="phone-job", state="PENDING")})
    page = pages.open(viewport=(390, 844))
    login(page, server.url, "alice")
    # A notification about the job links to it too.
    api(server.url, "/api/notifications", alice_token, {"type": "job_completed", "title": "Job 41 completed",
                                                         "data": {"job_id": "41"}})
    link = page.locator("#notifications-list .notification a.n-job")
    link.wait_for()
    assert link.get_attribute("href") == "/jobs/41"
    row = page.locator('#jobs-body tr[data-job-id="41"]')
    row.wait_for()
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the phone layout scrolls sideways by {overflow}px"
    assert row.locator(".col-state").is_visible() and row.locator(".col-left").is_visible()
    row.locator(".col-name").click()  # not the link: the whole row is the target
    page.wait_for_url(server.url + "/jobs/41")


@pytest.mark.timeout(240)
def test_an_array_is_one_row_with_task_counts_that_expands_and_a_task_id_finds_it(hub_server, make_user, pages):
    server = hub_server()
    orm(make_user, "alice")
    orm(save_jobs, {
        "30": job(30, name="sweep", array_job_id="30", array_tasks="2-4"),
        "31": job(31, name="sweep", state="RUNNING", array_job_id="30", array_task_id=1, start_time=1_700_000_100),
        "29": job(29, name="single"),
    })
    page = pages.open()
    login(page, server.url, "alice")
    array = page.locator('#jobs-body tr[data-array-id="30"]')
    array.wait_for()
    assert page.locator('#jobs-body tr[data-job-id="31"]').count() == 0, "tasks fold into the array's row"
    assert "3 pending · 1 running · 0 done" in array.locator(".col-name").inner_text()
    toggle = array.get_by_role("button", name="Show the 4 tasks of array 30")
    toggle.focus()
    page.keyboard.press("Enter")
    page.locator('#jobs-body tr[data-job-id="31"]').wait_for()
    assert page.locator('#jobs-body tr[data-job-id="31"] a.job-link').get_attribute("href") == "/jobs/30_1"
    assert page.locator('#jobs-body tr[data-job-id="30"] a.job-link').inner_text() == "30_[2-4]"

    page.fill("#filter-q", "30_1")
    page.wait_for_function("document.querySelectorAll('#jobs-body tr[data-job-id]').length === 1")
    assert page.locator("#jobs-body tr[data-job-id]").get_attribute("data-job-id") == "31"
    page.fill("#filter-q", "30_3")  # still waiting inside the array's pending record
    page.wait_for_function("document.querySelector('#jobs-body tr[data-job-id]')?.dataset.jobId === '30'")
    assert not pages.page_errors()
