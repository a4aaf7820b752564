"""The job page (/jobs/<id>) in Debian's chromium on the REAL one-node Slurm: the monitor polls
it, daphne serves the page, and the page follows the job over the WebSocket with no reload.

The cluster is shared with other tests: job names start with PREFIX and every job left is
cancelled at the end. Jobs run as root here, so the hub user "root" owns them. The hub runs
with HUB_PRIVATE_JOBS on (root follows its jobs on ``user:root``; alice sees none of them) and
cancel configured as the service account running ``scancel`` (a Slurm operator here: root).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.dashboard.conftest import login, orm, orm_until, screenshot_path
from tests.dashboard.real_slurm import TestJobs, slurm
from tests.slurm_monitor.conftest import monitor_process, slurm_cluster  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.usefixtures("transactional_db"), pytest.mark.timeout(300)]

PREFIX = "s4jp"
HUB_ENV = {"HUB_PRIVATE_JOBS": "true", "SLURM_MONITOR_CANCEL_COMMAND": "scancel {job_id}"}
WAIT_MS = 90_000
JOBS = TestJobs(PREFIX)
sbatch, cancel_ours = JOBS.sbatch, JOBS.cancel_ours


@pytest.fixture
def live(slurm_cluster, hub_server, monitor_process, make_user):  # noqa: F811
    """A hub, the monitor polling the real Slurm every second, root's token; our jobs cancelled after."""
    server = hub_server(HUB_ENV)
    monitor = monitor_process(["--jobs-interval", "1", "--nodes-interval", "2", "--metrics-interval", "5",
                               "--hub-url", server.url], name="monitor-jobpage")
    monitor.wait_for_log("jobs poll:")
    _user, token = orm(make_user, "root")
    yield server, token
    cancel_ours()


def wait_for_detail(base_url: str, token: str, job_id: str, state: str | None = None) -> dict:
    """Until the monitor has saved the job (GET /api/cluster/jobs/<id> answers 200)."""
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        request = urllib.request.Request(f"{base_url}/api/cluster/jobs/{job_id}",
                                         headers={"Authorization": f"Token {token}", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                body = json.load(response)
                if state is None or body["job"]["state"] == state:
                    return body
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} never reached the hub" + (f" as {state}" if state else ""))


def open_job(pages, server, job_id: str, viewport=(1280, 900)):
    page = pages.open(viewport=viewport)
    login(page, server.url, "root")
    page.goto(f"{server.url}/jobs/{job_id}")
    page.wait_for_selector("#connection[data-state='connected']")
    return page


def test_a_held_job_pending_in_words_then_running_then_finished_live(live, pages):
    server, token = live
    job_id = sbatch("life", "sleep 6", "--hold", "-t", "5")
    wait_for_detail(server.url, token, job_id, "PENDING")
    page = open_job(pages, server, job_id)
    page_id = page.evaluate("window.__pageId")
    page.wait_for_selector("#job[data-state='PENDING']")
    assert "Held by its owner" in page.locator("#reason-text").inner_text()
    assert "scontrol release" in page.locator("#reason-hint").inner_text()
    assert page.locator("#reason-code").inner_text() == "JobHeldUser"
    assert page.locator("[data-field='workdir']").inner_text() == "/tmp"

    slurm("scontrol", "release", job_id)
    page.wait_for_selector("#job[data-state='RUNNING']", timeout=WAIT_MS)
    assert page.locator("#reason-text").is_hidden() or page.locator("#job-reason").is_hidden()
    # -t 5: a countdown from under five minutes; elapsed ticks.
    left = page.locator("[data-field='left']").inner_text()
    assert left.startswith(("4 min", "5 min 00 s")), left
    page.wait_for_function("() => document.querySelector(\"[data-field='elapsed']\").textContent.endsWith(' s')")

    page.wait_for_selector("#job[data-state='COMPLETED']", timeout=WAIT_MS)
    assert page.evaluate("window.__pageId") == page_id, "the page reloaded"
    seen = page.evaluate("window.jobPage.seen")
    assert seen[0] == "PENDING" and "RUNNING" in seen and seen[-1] == "COMPLETED", seen
    assert [li.get_attribute("data-state") for li in page.locator("#job-transitions li").all()][-1] == "COMPLETED"
    assert page.locator("[data-field='exit']").inner_text() == "0"
    assert page.locator("#cancel-button").is_hidden()
    assert not pages.page_errors()
    page.screenshot(path=str(screenshot_path("jobpage.png", "JOBPAGE_SCREENSHOT")), full_page=True)


def test_cancel_is_confirmed_by_the_stream(live, pages):
    from slurm_monitor.models import JobActionAudit

    server, token = live
    job_id = sbatch("cancel", "sleep 300")
    wait_for_detail(server.url, token, job_id)
    page = open_job(pages, server, job_id)
    page_id = page.evaluate("window.__pageId")
    page.wait_for_selector("#job[data-state='RUNNING'], #job[data-state='PENDING']")
    page.click("#cancel-button")
    assert page.locator("#cancel-dialog").is_visible()
    page.click("#cancel-confirm")
    page.wait_for_selector("#job[data-state='CANCELLED']", timeout=WAIT_MS)
    assert page.evaluate("window.jobPage.cancelSeen") == ["cancelling", "cancelled"]
    assert page.locator("#cancel-status").inner_text() == "Cancelled."
    assert page.evaluate("window.__pageId") == page_id, "the page reloaded"
    # The request thread writes the audit row after scancel returns; the monitor may publish
    # the CANCELLED it then sees first.
    rows = orm_until(lambda: list(JobActionAudit.objects.filter(job_id=job_id).values_list("actor", "result")),
                     "cancel audit row", timeout=30)
    assert rows == [("root", "ok")]
    assert not pages.page_errors()


def test_another_users_job_is_not_found_and_a_phone_reads_the_fields(live, pages, make_user):
    server, token = live
    job_id = sbatch("phone", "sleep 300", "--hold")
    wait_for_detail(server.url, token, job_id)
    orm(make_user, "alice")
    other = pages.open()
    login(other, server.url, "alice")
    answer = other.goto(f"{server.url}/jobs/{job_id}")
    assert answer.status == 404
    assert f"No job {job_id}" in other.locator("h1").inner_text()

    phone = open_job(pages, server, job_id, viewport=(390, 844))
    phone.wait_for_selector("#job[data-state='PENDING']")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways"
    for field in ("partition", "cpus", "memory", "workdir", "submit", "left"):
        box = phone.locator(f"[data-field='{field}']").bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, (field, box)
        assert phone.locator(f"[data-field='{field}']").inner_text().strip()
    assert "Held by its owner" in phone.locator("#reason-text").inner_text()
