"""Browser-test fixtures: Debian's chromium driven by Playwright (Python), a live daphne
(``hub_server`` from tests/conftest.py) and ``run_slurm_monitor --mock`` feeding it.

Nothing skips: a missing chromium fails loudly (``scripts/setup-chromium`` installs it).
Playwright's own browser download is never used; ``CHROMIUM_PATH`` overrides the binary.
On failure a screenshot and the page's console log land in ``var/test-artifacts/``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import ARTIFACTS as LOG_DIR
from tests.conftest import ROOT, database_env, stop_process

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = ROOT / "var" / "test-artifacts"
PASSWORD = "pw-for-tests-only"
DEFAULT_TIMEOUT_MS = 30_000

# Records, per job row of the dashboard, the states it showed and which <tr> element showed
# them, so a test can prove a row changed in place (same element, no reload).
JOB_RECORDER = """
window.__pageId = Math.random().toString(36).slice(2);
window.__jobHistory = {};
(() => {
  const rowIds = new WeakMap();
  let seq = 0;
  const record = (tr) => {
    const id = tr.dataset && tr.dataset.jobId, state = tr.dataset && tr.dataset.state;
    if (!id || !state) return;
    if (!rowIds.has(tr)) rowIds.set(tr, ++seq);
    const h = (window.__jobHistory[id] ||= { states: [], rows: [] });
    if (h.states[h.states.length - 1] !== state) h.states.push(state);
    if (!h.rows.includes(rowIds.get(tr))) h.rows.push(rowIds.get(tr));
  };
  document.addEventListener("DOMContentLoaded", () => {
    const body = document.getElementById("jobs-body");
    if (!body) return;
    new MutationObserver((mutations) => {
      for (const m of mutations) {
        if (m.type === "attributes") record(m.target);
        else for (const n of m.addedNodes) if (n.nodeType === 1 && n.matches("tr[data-job-id]")) record(n);
      }
    }).observe(body, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-state"] });
  });
})();
"""


def pytest_runtest_makereport(item, call):
    if call.when == "call":
        item.dashboard_failed = call.excinfo is not None


@pytest.fixture
def browser():
    """A fresh headless chromium per test (the sync API must not outlive the test's thread
    state, and other tests in the session run asyncio loops)."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run scripts/setup-chromium"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class PageRecorder:
    """Opens pages; keeps their console output for the failure report."""

    def __init__(self, browser, request) -> None:
        self.browser = browser
        self.request = request
        self.pages: list = []
        self.logs: list[str] = []

    def open(self, viewport=(1440, 900), color_scheme: str = "light"):
        context = self.browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                           color_scheme=color_scheme)
        context.add_init_script(JOB_RECORDER)
        page = context.new_page()
        page.set_default_timeout(DEFAULT_TIMEOUT_MS)
        name = f"page{len(self.pages) + 1}"
        page.on("console", lambda m: self.logs.append(f"[{name}] {m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.logs.append(f"[{name}] PAGE ERROR: {e}"))
        self.pages.append(page)
        return page

    def page_errors(self) -> list[str]:
        return [line for line in self.logs if "PAGE ERROR" in line]

    def save_failure(self) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        test = self.request.node.name.replace("/", "_")
        for index, page in enumerate(self.pages, 1):
            try:
                page.screenshot(path=str(ARTIFACTS / f"{test}-page{index}.png"), full_page=True)
            except Exception:  # the page may be gone; the log still helps
                pass
        (ARTIFACTS / f"{test}-console.log").write_text("\n".join(self.logs))


@pytest.fixture
def pages(browser, request):
    recorder = PageRecorder(browser, request)
    yield recorder
    if getattr(request.node, "dashboard_failed", False):
        recorder.save_failure()


def orm(fn, *args, **kwargs):
    """Run database code from a test body that drives Playwright.

    Playwright's sync API keeps an asyncio loop on the test's thread, so Django refuses ORM
    calls there (SynchronousOnlyOperation). A worker thread has no loop; its connection is
    closed afterwards. (Setting DJANGO_ALLOW_ASYNC_UNSAFE instead would leak into the daphne
    and monitor processes the test starts.)
    """
    from django.db import connections

    def call():
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result()


def orm_until(fn, what: str, timeout: float = 60.0):
    """``orm(fn)`` again until it returns something true, which it returns: for rows another
    process writes (the monitor, daphne's request threads) after what the test has seen.
    Bounded (a hang guard, not a speed limit)."""
    deadline = time.monotonic() + timeout
    while not (found := orm(fn)):
        assert time.monotonic() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.2)
    return found


def login(page, base_url: str, username: str, password: str = PASSWORD) -> None:
    """Sign in through the login form, land on the dashboard, wait for the live connection."""
    page.goto(base_url + "/")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/")
    page.wait_for_selector('#connection[data-state="connected"]')


def wait_following(page, *channels: str) -> None:
    """Wait until the page is subscribed to ``channels`` (the hub acknowledged each).

    "connected" is not enough for a test that publishes events no row backs (only the
    monitor saves rows, before it publishes): the page subscribes a feed's channel only
    after that feed's REST snapshot, ``since`` the position the snapshot read, so an event
    published before that read counts as included in the snapshot and is never shown.
    """
    page.wait_for_function(
        "(names) => names.every((n) => dashboardHub.channels().some((c) => c.name === n && c.subscribed))",
        arg=list(channels))


class MonitorProcess:
    """``manage.py run_slurm_monitor --mock`` publishing through the hub's REST API (``http``
    sink, the embedded hub) or straight into the shared Redis layer (``layer`` sink)."""

    def __init__(self, hub_url: str, seed: int, sink: str = "http", env: dict | None = None) -> None:
        self.hub_url = hub_url
        self.seed = seed
        self.sink = sink
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"slurm-monitor-{os.getpid()}-{seed}.log"

    def start(self) -> "MonitorProcess":
        env = dict(os.environ)
        env.update({"DJANGO_SETTINGS_MODULE": "realtime_project.settings", "PYTHONUNBUFFERED": "1"})
        env.update(database_env())
        env.update(self.env)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "run_slurm_monitor", "--mock", "--seed", str(self.seed),
             "--jobs-interval", "0.5", "--nodes-interval", "1", "--metrics-interval", "2",
             "--sink", self.sink, "--hub-url", self.hub_url],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self

    def wait_first_save(self, timeout: float = 60) -> None:
        """Wait until the monitor has saved its first jobs and nodes polls.

        On an empty store its first poll is only a baseline: saved for REST, published as no
        event. A page whose snapshots predate that save loads them again once it hears of the
        save (test_browser_first_save.py); a test that needs the full table from its first
        rows on opens the page after it.
        """
        from slurm_monitor.models import ClusterJob, ClusterNode

        def saved() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log_text()[-2000:]
            return ClusterJob.objects.exists() and ClusterNode.objects.exists()

        orm_until(saved, f"the monitor's first save (its log:\n{self.log_text()[-2000:]})", timeout)

    def stop(self) -> None:
        stop_process(self.proc)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def slurm_monitor():
    started: list[MonitorProcess] = []

    def start(hub_url: str, seed: int = 10, sink: str = "http", env: dict | None = None) -> MonitorProcess:
        monitor = MonitorProcess(hub_url, seed, sink, env).start()
        started.append(monitor)
        return monitor

    yield start
    for monitor in started:
        monitor.stop()


def api(base_url: str, path: str, token: str, body: dict | None = None) -> dict:
    """Call the hub's REST API as a token holder (the test's side, not the page's)."""
    request = urllib.request.Request(
        base_url + path, method="GET" if body is None else "POST",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json",
                 "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=15) as response:
        return json.load(response)


def screenshot_path(name: str = "dashboard.png", variable: str = "DASHBOARD_SCREENSHOT") -> Path:
    """Where a screenshot goes: ``$variable`` (e.g. DASHBOARD_SCREENSHOT=docs/dashboard.png to
    refresh the README's picture, JOBPAGE_SCREENSHOT=docs/jobpage.png) or var/test-artifacts/<name>."""
    target = os.environ.get(variable)
    path = Path(target) if target else ARTIFACTS / name
    if not path.is_absolute():
        path = ROOT / path
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
