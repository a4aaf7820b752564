"""Browser notifications in Chromium (issue 15): the dashboard asks for permission only when
"Enable browser notifications" is clicked, then turns each new live notification the
person's rule sends to the browser into a desktop notification (``new Notification``).

The context grants the permission (so Chromium's real ``requestPermission`` resolves
"granted"); an init script wraps ``window.Notification`` in a recording subclass that reports
"default" until the page asks, so the test sees when it asked and what it showed."""

from __future__ import annotations

import pytest

from tests.dashboard.conftest import api, login, orm

pytestmark = pytest.mark.usefixtures("transactional_db")

RECORDING_NOTIFICATION = """
(() => {
  const Real = window.Notification;
  if (!Real) return;
  window.__notifications = { asked: 0, made: [], errors: [] };
  let asked = false;
  class Recording extends Real {
    constructor(title, options) {
      window.__notifications.made.push({ title, body: options && options.body });
      try { super(title, options); } catch (e) { window.__notifications.errors.push(String(e)); throw e; }
    }
    static get permission() { return asked ? Real.permission : "default"; }
    static requestPermission() {
      window.__notifications.asked += 1;
      asked = true;
      return Real.requestPermission();
    }
  }
  window.Notification = Recording;
})();
"""


def set_rule(user) -> None:
    from hub.models import NotificationRule

    NotificationRule.objects.create(user=user, channels={"job_completed": ["page"]})


@pytest.mark.timeout(180)
def test_enable_button_then_a_live_notification_becomes_a_desktop_notification(hub_server, make_user, pages):
    server = hub_server()
    alice, token = orm(make_user, "alice")
    orm(set_rule, alice)  # completed jobs: page only, not the browser
    page = pages.open()
    page.context.grant_permissions(["notifications"], origin=server.url)
    page.context.add_init_script(RECORDING_NOTIFICATION)
    # Only a notification that arrives live becomes a desktop one (the REST snapshot's are
    # old news): post below once the page has its snapshot, or they may land in it.
    with page.expect_response(lambda r: "/api/notifications?" in r.url):
        login(page, server.url, "alice")

    button = page.locator("#browser-notify")
    button.wait_for(state="visible")
    assert page.evaluate("window.__notifications.asked") == 0  # never asked on load
    button.click()
    page.wait_for_function("window.__notifications.asked === 1")
    button.wait_for(state="hidden")

    # A notification to yourself is free on the REST road; it arrives live on user:alice.
    api(server.url, "/api/notifications", token,
        {"type": "job_completed", "title": "Job 5 completed", "message": "ok", "severity": "success"})
    api(server.url, "/api/notifications", token,
        {"type": "job_failed", "title": "Job 6 failed", "message": "exit code 2", "severity": "error"})
    page.wait_for_selector("#notifications-list li.notification:has-text('Job 6 failed')", state="attached")
    page.wait_for_selector("#notifications-list li.notification:has-text('Job 5 completed')", state="attached")
    page.wait_for_function("window.__notifications.made.length >= 1")
    recorded = page.evaluate("window.__notifications")
    assert recorded["made"] == [{"title": "Job 6 failed", "body": "exit code 2"}]
    assert recorded["errors"] == []
    assert pages.page_errors() == []
