"""The user's path from the queue to the history, in Debian's chromium on the REAL one-node
Slurm (22.05, slurmdbd accounting, MinJobAge=10: a finished job leaves ``squeue`` ~10 s after
it ends): submit, see it pending with its reason in words, running with time left, watch it
finish in the jobs table's Finished view, find it there by its id after Slurm purged it, open
its page and read its efficiency from accounting. An array is one row with per-task counts
while it runs, and its tasks are found as ``<id>_<task>`` afterwards.

The cluster is shared with other tests: job names start with PREFIX and every job of ours
left in the queue is cancelled at the end. Jobs run as root here, so the hub user "root" owns
them (HUB_PRIVATE_JOBS on: root follows its jobs on ``user:root``).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request

import pytest

from tests.dashboard.conftest import login, orm, screenshot_path
from tests.dashboard.real_slurm import TestJobs, slurm
from tests.slurm_monitor.conftest import monitor_process, slurm_cluster  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.usefixtures("transactional_db"), pytest.mark.timeout(300)]

PREFIX = "s4hist"
HUB_ENV = {"HUB_PRIVATE_JOBS": "true"}
WAIT_MS = 90_000
JOBS = TestJobs(PREFIX)
sbatch, cancel_ours = JOBS.sbatch, JOBS.cancel_ours


def wait_until_purged(job_id: str, timeout: float = 120) -> None:
    """Until Slurm no longer lists the job (or any task of the array): MinJobAge passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = subprocess.run(["squeue", "-h", "-j", job_id], capture_output=True, text=True, timeout=30)
        if not listed.stdout.strip():
            return
        time.sleep(0.5)
    raise AssertionError(f"Slurm still lists job {job_id} after {timeout} s")


def wait_for_accounting(base_url: str, token: str, job_id: str, timeout: float = 120) -> dict:
    """Until the monitor's history step has asked sacct about the job: its detail carries a
    CPU efficiency. (The monitor asks sacct about ended jobs every history interval; the page
    reads the figures when it opens.)"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        request = urllib.request.Request(f"{base_url}/api/cluster/jobs/{job_id}",
                                         headers={"Authorization": f"Token {token}", "Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            detail = json.load(response)
        if ((detail.get("efficiency") or {}).get("cpu") or {}).get("percent") is not None:
            return detail
        time.sleep(0.5)
    raise AssertionError(f"no accounting for job {job_id} after {timeout} s")


@pytest.fixture
def live(slurm_cluster, hub_server, monitor_process, make_user):  # noqa: F811
    """A hub, the monitor polling the real Slurm every second (and sacct every 2 s), root's
    token; our jobs cancelled after."""
    server = hub_server(HUB_ENV)
    monitor = monitor_process(["--jobs-interval", "1", "--nodes-interval", "2", "--metrics-interval", "5",
                               "--hub-url", server.url], env={"SLURM_MONITOR_HISTORY_INTERVAL": 2},
                              name="monitor-history")
    monitor.wait_for_log("jobs poll:")
    _user, token = orm(make_user, "root")
    server.token = token
    yield server
    cancel_ours()


def dashboard(pages, server):
    page = pages.open(viewport=(1440, 900))
    login(page, server.url, "root")
    return page


def row_text(page, selector: str, column: str) -> str:
    return page.locator(f"{selector} td.{column}").inner_text().strip()


def test_a_job_from_submission_to_the_history_after_slurm_purged_it(live, pages):
    server = live
    job_id = sbatch("path", "sleep 8", "--hold", "-t", "3")
    page = dashboard(pages, server)
    row = f'#jobs-body tr[data-job-id="{job_id}"]'

    # Pending, with the reason in words.
    page.wait_for_selector(f'{row}[data-state="PENDING"]', timeout=WAIT_MS)
    assert "Held by its owner" in row_text(page, row, "col-nodes")

    # Running, with time left under its 3-minute limit.
    slurm("scontrol", "release", job_id)
    page.wait_for_selector(f'{row}[data-state="RUNNING"]', timeout=WAIT_MS)
    left = row_text(page, row, "col-left")
    assert re.fullmatch(r"(2m \d\ds|3m 00s)", left), left

    # The Finished view is open when it ends: the job appears there live.
    page.get_by_role("tab", name="Finished").click()
    assert page.get_by_role("tab", name="Finished").get_attribute("aria-selected") == "true"
    assert page.locator("#jobs-wrap").is_hidden()
    assert "view=finished" in page.url
    done = f'#history-body tr[data-job-id="{job_id}"]'
    page.wait_for_selector(f'{done}[data-state="COMPLETED"]', timeout=WAIT_MS)
    assert row_text(page, done, "col-exit") == "0"
    assert row_text(page, done, "col-ended"), "no end time"
    # Newest ending first (the default), sorted by the server.
    assert page.locator("#history-body tr").first.get_attribute("data-job-id") == job_id
    assert page.locator('#history-head th[data-key="ended"]').get_attribute("aria-sort") == "descending"

    # Slurm purges it; the Active view no longer lists it; a search there offers the history.
    wait_until_purged(job_id)
    page.get_by_role("tab", name="Active").click()
    page.wait_for_selector(row, state="detached", timeout=WAIT_MS)
    page.fill("#filter-q", job_id)
    other = page.get_by_role("button", name="Look in finished jobs")
    other.wait_for()
    assert f"No active job matches “{job_id}”" in page.locator("#jobs-empty").inner_text()
    other.click()

    # Found in the Finished view by its id (a reload keeps the view and the search).
    page.reload()
    page.wait_for_selector(f'{done}[data-state="COMPLETED"]', timeout=WAIT_MS)
    assert page.locator("#history-body tr").count() == 1
    assert page.locator("#filter-q").input_value() == job_id
    assert page.get_by_role("tab", name="Finished").get_attribute("aria-selected") == "true"
    page.fill("#filter-q", "")
    page.wait_for_function("document.querySelectorAll('#history-body tr').length >= 1")
    page.screenshot(path=str(screenshot_path("history.png", "HISTORY_SCREENSHOT")))
    page.fill("#filter-q", job_id)
    page.wait_for_function(f"document.querySelectorAll('#history-body tr').length === 1 && "
                           f"document.querySelector('#history-body tr').dataset.jobId === '{job_id}'")

    # Its page, with the efficiency accounting recorded (CPU from sacct; memory may be unknown).
    wait_for_accounting(server.url, server.token, job_id)
    page.locator(f"{done} a.job-link").click()
    page.wait_for_url(f"{server.url}/jobs/{job_id}")
    page.wait_for_selector("#job[data-state='COMPLETED']")
    page.wait_for_selector("#job-efficiency:not([hidden])", timeout=WAIT_MS)
    assert page.locator("#efficiency-source").inner_text() == "from accounting"
    lines = page.locator("#efficiency-list").inner_text()
    assert re.search(r"CPU\s+\d+(\.\d+)?%", lines), lines
    assert not pages.page_errors()
    # JOBPAGE_HISTORY_SCREENSHOT=docs/jobpage.png: the README's job page, with its accounting.
    page.screenshot(path=str(screenshot_path("jobpage-history.png", "JOBPAGE_HISTORY_SCREENSHOT")), full_page=True)


def test_an_array_is_one_row_while_it_runs_and_its_task_is_found_in_the_history(live, pages):
    server = live
    array_id = sbatch("array", "sleep 8", "--array=1-3", "--hold", "-t", "2")
    page = dashboard(pages, server)
    array_row = f'#jobs-body tr[data-array-id="{array_id}"]'
    page.wait_for_selector(array_row, timeout=WAIT_MS)
    assert "3 pending · 0 running · 0 done" in row_text(page, array_row, "col-name")

    slurm("scontrol", "release", array_id)
    # Two CPUs: tasks run while others wait or have ended, still in one row with the counts.
    page.wait_for_function(
        f"() => /[1-9] running/.test(document.querySelector('{array_row} td.col-name')?.textContent || '')",
        timeout=WAIT_MS)
    assert page.locator(array_row).count() == 1
    assert page.locator('#jobs-body tr[data-job-id]:not([data-depth="1"])').count() == 0, \
        "the tasks fold into the array's row"

    wait_until_purged(array_id)
    page.wait_for_selector(array_row, state="detached", timeout=WAIT_MS)
    # The switch by keyboard (a tablist: arrows move and select).
    page.get_by_role("tab", name="Active").focus()
    page.keyboard.press("ArrowRight")
    finished = page.get_by_role("tab", name="Finished")
    assert finished.get_attribute("aria-selected") == "true"
    assert page.evaluate("document.activeElement.id") == "tab-finished"
    assert page.locator("#history-wrap").is_visible() and page.locator("#jobs-wrap").is_hidden()
    page.fill("#filter-q", f"{array_id}_2")
    task = page.locator("#history-body tr")
    page.wait_for_function("document.querySelectorAll('#history-body tr').length === 1", timeout=WAIT_MS)
    assert task.locator("a.job-link").inner_text() == f"{array_id}_2"
    assert task.get_attribute("data-state") == "COMPLETED"
    assert task.locator("a.job-link").get_attribute("href") == f"/jobs/{array_id}_2"
    # The array's id finds all three tasks.
    page.fill("#filter-q", array_id)
    page.wait_for_function("document.querySelectorAll('#history-body tr').length === 3", timeout=WAIT_MS)
    labels = sorted(page.locator("#history-body a.job-link").all_inner_texts())
    assert labels == [f"{array_id}_{n}" for n in (1, 2, 3)], labels
    # Sorted by the server: the Job column, biggest id first; kept in the URL.
    page.locator('#history-head th[data-key="id"] button').click()
    page.wait_for_function("document.querySelector('#history-head th[data-key=\"id\"]').getAttribute('aria-sort')"
                           " === 'descending'")
    assert "hsort=-id" in page.url
    ids = [int(i) for i in page.eval_on_selector_all("#history-body tr", "rows => rows.map(r => r.dataset.jobId)")]
    assert ids == sorted(ids, reverse=True) and len(ids) == 3, ids
    assert not pages.page_errors()
