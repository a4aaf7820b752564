"""A dashboard opened before the Slurm monitor's first save, on an empty database, in a real
browser (Debian's chromium via Playwright) against a live daphne and ``run_slurm_monitor --mock``.

That first poll is a baseline: saved for REST, published as no event. The page's snapshots
(read before it, ``updated_at`` null) hold none of its rows, so the page must load them again
once it hears the stream was saved (``Feed.catchFirstSave``), with no reload and without
waiting for each job to change.
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.dashboard.conftest import login, orm, wait_following
from tests.dashboard.test_browser import rest_job_states

pytestmark = pytest.mark.usefixtures("transactional_db")

WAIT_MS = 90_000

# What the page heard on the wire: the jobs any jobs event named, and the nodes whose state a
# nodes event told. Attached before the monitor starts, so no event escapes it.
RECORD_EVENTS = """() => {
  window.__told = { jobs: new Set(), nodes: new Set() };
  dashboardHub.on("publication", (f) => {
    const d = f.data || {};
    if (f.channel === "jobs" && d.job_id !== undefined) __told.jobs.add(String(d.job_id));
    if (f.channel === "nodes" && d.node && "state" in d) __told.nodes.add(d.node);
  });
}"""

# Both snapshots read and settled: the reload a null position asks for once subscribed too.
SNAPSHOTS_SETTLED = """() => ["jobs", "nodes"].every((n) => {
  const f = dashboardFeeds[n];
  return f.loadedAt > 0 && !f.loading;
})"""

# A row only the baseline can have given: a job no event named, a node state no event told.
BASELINE_SHOWN = """() => {
  const jobs = [...document.querySelectorAll("#jobs-body tr[data-job-id]")]
    .filter((tr) => !__told.jobs.has(tr.dataset.jobId));
  const nodes = [...document.querySelectorAll("#nodes-grid .node[data-node]")]
    .filter((el) => el.dataset.state && el.dataset.state !== "UNKNOWN" && !__told.nodes.has(el.dataset.node));
  return jobs.length > 0 && nodes.length > 0 && { jobs: jobs.length, nodes: nodes.length };
}"""

HELD_JOB_STATES = "() => Object.fromEntries([...dashboardJobs.jobs].map(([id, job]) => [id, job.state]))"


@pytest.mark.timeout(300)
def test_page_opened_before_the_first_save_shows_the_baseline(hub_server, slurm_monitor, make_user, pages):
    from slurm_monitor.models import ClusterJob, ClusterStream

    server = hub_server()
    orm(make_user, "alice")
    page = pages.open()
    login(page, server.url, "alice")
    page_id = page.evaluate("window.__pageId")
    page.evaluate(RECORD_EVENTS)
    wait_following(page, "jobs", "nodes", "metrics")
    page.wait_for_function(SNAPSHOTS_SETTLED)
    assert page.locator("#jobs-body tr[data-job-id]").count() == 0
    # No monitor has run yet: every snapshot the page read predates the first save.
    assert not orm(lambda: ClusterStream.objects.exists()), "the database was not empty"

    monitor = slurm_monitor(server.url, seed=10)
    try:
        shown = page.wait_for_function(BASELINE_SHOWN, timeout=WAIT_MS).json_value()
    except PlaywrightTimeout:
        log = monitor.log_text()[-2000:]
        raise AssertionError(f"the baseline never reached the page (monitor log:\n{log})") from None
    assert shown["jobs"] >= 1 and shown["nodes"] >= 1, shown
    assert orm(lambda: ClusterJob.objects.exists())
    assert None not in page.evaluate("[dashboardFeeds.jobs.updatedAt, dashboardFeeds.nodes.updatedAt]")

    # The page holds every job REST lists, as REST says it is (the cluster keeps moving: retry,
    # bounded). The table draws only the rows in view, so compare what the page holds.
    deadline = time.monotonic() + 90
    while (held := page.evaluate(HELD_JOB_STATES)) != (truth := rest_job_states(page)):
        assert time.monotonic() < deadline, f"page never matched REST:\nheld={held}\ntruth={truth}"
        time.sleep(0.5)
    assert page.evaluate("window.__pageId") == page_id, "the page reloaded"
    assert not pages.page_errors()
