"""The page says when its data is old although the socket is up: the Slurm monitor killed,
the connection indicator turns amber with "data N s old" instead of the green "Live". Then
the hub goes away and "Reconnect now" brings the page back at once."""

from __future__ import annotations

import re
import signal

import pytest

from tests.dashboard.conftest import login, orm

pytestmark = pytest.mark.usefixtures("transactional_db")

DOT_COLOUR = "() => getComputedStyle(document.querySelector('#connection .connection-dot')).backgroundColor"
AMBER = """() => {
  const probe = document.body.appendChild(document.createElement("span"));
  probe.style.backgroundColor = "var(--pending)";
  const colour = getComputedStyle(probe).backgroundColor;
  probe.remove();
  return colour;
}"""
AGE = re.compile(r"^data (\d+) s old$")


@pytest.mark.timeout(240)
def test_killed_monitor_shows_stale_data_then_reconnect_now(hub_server, slurm_monitor, make_user, pages):
    server = hub_server()
    monitor = slurm_monitor(server.url, seed=5)  # jobs every 0.5 s, nodes 1 s, metrics 2 s
    orm(make_user, "alice")
    page = pages.open()
    login(page, server.url, "alice")
    box = page.locator("#connection")
    text = page.locator("#connection-text")

    # Live: the monitor's streams are current (learned from REST and metrics_update).
    page.wait_for_selector('#connection[data-state="connected"][data-freshness="fresh"]', timeout=60_000)
    assert text.inner_text() == "Live"
    live_colour = page.evaluate(DOT_COLOUR)

    monitor.proc.send_signal(signal.SIGKILL)
    monitor.proc.wait(timeout=10)

    # The socket stays up; the data goes stale (3 intervals, at least 10 s): amber, its age.
    page.wait_for_selector('#connection[data-state="connected"][data-freshness="stale"]', timeout=30_000)
    first = AGE.match(text.inner_text())
    assert first, text.inner_text()
    assert page.evaluate(DOT_COLOUR) != live_colour
    assert page.evaluate(DOT_COLOUR) == page.evaluate(AMBER)
    # Each stream turns late on its own clock (the 10 s floor, from its own last update):
    # soon every one of them is named.
    page.wait_for_function("() => ['jobs', 'nodes'].every((name) =>"
                           " document.getElementById('connection').title.includes(name))",
                           timeout=15_000)
    assert "jobs" in box.get_attribute("title")
    page.wait_for_function(
        f"() => {{ const m = /^data (\\d+) s old$/.exec(document.getElementById('connection-text').textContent);"
        f" return m && Number(m[1]) > {int(first.group(1))}; }}", timeout=10_000)

    # The hub goes away. With the automatic backoff pushed far out, only the button can
    # bring the page back in time.
    page.evaluate("() => { dashboardHub.options.minDelay = 600000; dashboardHub.options.baseDelay = 600000; }")
    assert page.locator("#reconnect-now").is_hidden()
    server.stop()
    page.wait_for_selector('#connection[data-state="reconnecting"]', timeout=30_000)
    button = page.locator("#reconnect-now")
    button.wait_for(state="visible")
    server.start()
    button.click()
    page.wait_for_selector('#connection[data-state="connected"]', timeout=30_000)
    assert button.is_hidden()
    assert page.evaluate("window.dashboardHub.connectedCount") == 2
    # Reconnected, and still honest: the monitor is dead, so the data is still old.
    page.wait_for_selector('#connection[data-freshness="stale"]', timeout=10_000)
    assert AGE.match(text.inner_text()), text.inner_text()
    assert not pages.page_errors()
