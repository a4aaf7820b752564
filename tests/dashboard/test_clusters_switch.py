"""Several clusters on the dashboard (issue 13), in a real browser against a live daphne: the
cluster switcher appears with a second cluster, switching (in place: same page, same socket)
changes the rows (job 42 exists on both clusters) and the channels followed, the choice is in
the URL and remembered, row links carry ``?cluster=``, the job page of b's job follows
``jobs.b``, and a live event published on ``jobs.b`` shows only while cluster b is shown.

Rows are written with the ORM as the monitors of both clusters store them
(``slurm_monitor.clusters``); events are published through the hub's REST API as the
monitor's ``http`` sink does.
"""

from __future__ import annotations

import dataclasses

import pytest

from tests.dashboard.conftest import api, login, orm
from tests.dashboard.test_dashboard_table import job, superuser_token

pytestmark = pytest.mark.usefixtures("transactional_db")

ROW = '#jobs-body tr[data-job-id="{}"]'


def seed(clusters_seeded: tuple[str, ...] = ("", "b")) -> None:
    """Job 42 on both clusters (different names), 43 on b only; both monitors saved once."""
    from django.utils import timezone

    from slurm_monitor import clusters
    from slurm_monitor.models import ClusterJob, ClusterStream

    def row(column: str, job_id: int, name: str) -> None:
        record = dataclasses.asdict(job(job_id, name=name))
        ClusterJob.objects.create(job_id=clusters.key(column, str(job_id)), cluster=column, user="alice",
                                  partition="cpu", state="PENDING", record=record)

    if "" in clusters_seeded:
        row("", 42, "on-primary")
    if "b" in clusters_seeded:
        row("b", 42, "on-b")
        row("b", 43, "only-b")
    for column in clusters_seeded:
        ClusterStream.objects.create(name=clusters.stream_key(column, "jobs"), cluster=column,
                                     updated_at=timezone.now(), source="test")


def subscribed(page) -> list[str]:
    return page.evaluate("window.dashboardHub.channels().map(c => c.name)")


@pytest.mark.timeout(240)
def test_switching_clusters_changes_rows_channels_and_live_events(hub_server, make_user, pages):
    server = hub_server()
    orm(make_user, "alice")
    token = orm(superuser_token)
    orm(seed, ("",))

    def publish(channel: str, job_id: str, cluster: str, event: str = "job_submitted", state: str = "PENDING") -> None:
        data = {"job_id": job_id, "name": f"live{job_id}", "user": "alice", "partition": "cpu", "state": state,
                "reason": None, "nodes": "", "state_flags": [], "display_id": job_id, "array_job_id": None,
                "array_task_id": None, "cluster": cluster}
        message = {"type": event, "data": data}
        api(server.url, "/api/broadcast", token, {"channel": channel, "message": message})

    page = pages.open()
    login(page, server.url, "alice")
    # One cluster: nothing visible changes (no switcher, no ?cluster= in the URL).
    page.locator(ROW.format(42)).wait_for()
    assert page.locator("#cluster-switch").is_hidden() and page.url == server.url + "/"

    orm(seed, ("b",))  # b's monitor saves for the first time
    page.reload()
    page.wait_for_selector('#connection[data-state="connected"]')
    # The primary first: its rows, its channels, and a switcher since there are two clusters.
    page.locator(ROW.format(42)).wait_for()
    assert "on-primary" in page.locator(ROW.format(42)).inner_text()
    assert page.locator(ROW.format(43)).count() == 0
    switch = page.get_by_label("Cluster", exact=True)
    assert switch.is_visible()
    assert [o.strip() for o in switch.locator("option").all_inner_texts()] == ["default", "b"]
    assert page.locator(ROW.format(42) + " a.job-link").get_attribute("href") == "/jobs/42"

    # Switch by keyboard: focus the select, choose b; the same page now shows b.
    page.evaluate("window.__samePage = true")
    switch.focus()
    page.keyboard.press("ArrowDown")  # a closed <select>: the arrow picks the next option
    page.wait_for_url(server.url + "/?cluster=b")
    page.locator(ROW.format(42), has_text="on-b").wait_for()
    page.locator(ROW.format(43)).wait_for()
    assert page.evaluate("window.__samePage") is True
    assert page.locator(ROW.format(42) + " a.job-link").get_attribute("href") == "/jobs/42?cluster=b"
    page.wait_for_function("window.dashboardHub.channels().some(c => c.name === 'jobs.b' && c.subscribed)")
    assert "jobs" not in subscribed(page) and "nodes.b" in subscribed(page)

    # Live on b: an event on jobs.b shows.
    publish("jobs.b", "44", "b")
    page.locator(ROW.format(44)).wait_for()

    # The job page of b's 43: its REST calls and its live channel are b's.
    page.locator(ROW.format(43) + " a.job-link").click()
    page.wait_for_url(server.url + "/jobs/43?cluster=b")
    page.wait_for_selector("#job[data-state='PENDING']")
    assert page.locator("#job-title").inner_text() == "Job 43 on b"
    # Subscribed (acknowledged), not only asked for: an event before that is not the page's.
    page.wait_for_function(
        "window.jobPage && window.jobPage.hub.channels().some(c => c.name === 'jobs.b' && c.subscribed)")
    publish("jobs.b", "43", "b", "job_state_changed", "RUNNING")
    page.wait_for_selector("#job[data-state='RUNNING']")
    assert page.evaluate("window.jobPage.seen").count("RUNNING") == 1

    # Remembered: the bare URL comes back to b.
    page.goto(server.url + "/")
    page.wait_for_url(server.url + "/?cluster=b")
    page.locator(ROW.format(43)).wait_for()

    # Back to the primary: b's rows and b's live events are gone from the page.
    page.evaluate("window.__samePage = true")
    page.get_by_label("Cluster", exact=True).select_option("default")
    page.wait_for_url(server.url + "/?cluster=default")
    page.locator(ROW.format(42), has_text="on-primary").wait_for()
    page.wait_for_function("window.dashboardHub.channels().some(c => c.name === 'jobs')")
    assert not any(name.endswith(".b") for name in subscribed(page))
    assert page.evaluate("window.__samePage") is True
    publish("jobs.b", "45", "b")
    publish("jobs", "46", "default")  # the primary stays live; jobs.b is not followed any more
    page.locator(ROW.format(46)).wait_for()
    assert page.locator(ROW.format(45)).count() == 0 and page.locator(ROW.format(44)).count() == 0
    assert page.locator(ROW.format(43)).count() == 0
    assert not pages.page_errors()
