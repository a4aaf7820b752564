"""Issue 15, end to end: an alert rule created in the admin raises, is acknowledged in the
page and resolves. A live daphne, ``run_slurm_monitor --mock`` evaluating the rules every
nodes poll, two staff members' pages. One clicks "Acknowledge"; both pages show who did it,
because the ``alert_acknowledged`` event on ``alerts`` says so (the stream is the
confirmation, not the POST's answer). The rule's threshold raised, the next poll resolves the
alert and it leaves both pages."""

from __future__ import annotations

import pytest

from tests.dashboard.conftest import login, orm

pytestmark = pytest.mark.usefixtures("transactional_db")

RULE = "always_busy"
BANNER = f'#alerts .alert[data-alert-id="{RULE}"]'


def make_superuser(username: str) -> None:
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(username=username).update(is_superuser=True)


def raise_threshold(name: str) -> None:
    from slurm_monitor.models import AlertRule

    assert AlertRule.objects.filter(name=name).update(threshold=1000.0) == 1


def audit_of(name: str) -> list[tuple[str, str]]:
    from slurm_monitor.models import Alert

    alert = Alert.objects.get(rule_name=name)
    return list(alert.audit.values_list("action", "actor"))


@pytest.mark.timeout(240)
def test_a_rule_created_in_admin_raises_is_acknowledged_in_the_page_and_resolves(
        hub_server, slurm_monitor, make_user, pages):
    server = hub_server()
    orm(make_user, "boss", staff=True)
    orm(make_superuser, "boss")
    orm(make_user, "carol", staff=True)
    slurm_monitor(server.url, seed=7)  # nodes (and the rules) every second

    boss = pages.open()
    login(boss, server.url, "boss")
    carol = pages.open()
    login(carol, server.url, "carol")

    # The rule, through the admin: CPU allocation above -1 % always fires, at once.
    admin = boss.context.new_page()
    admin.goto(server.url + "/admin/slurm_monitor/alertrule/add/")
    admin.fill("#id_name", RULE)
    admin.select_option("#id_metric", "cpu_alloc_percent")
    admin.fill("#id_threshold", "-1")
    admin.select_option("#id_severity", "critical")
    admin.click("input[name=_save]")
    admin.wait_for_url("**/admin/slurm_monitor/alertrule/")
    admin.close()

    # Raised by the monitor, pushed on `alerts`: both staff pages show it with the button.
    for page in (boss, carol):
        page.locator(BANNER).wait_for(timeout=60_000)
        assert page.locator(BANNER).get_attribute("data-severity") == "critical"
        assert page.locator(f"{BANNER} .alert-ack-button").inner_text() == "Acknowledge"

    boss.locator(f"{BANNER} .alert-ack-button").click()

    # Both pages learn it from the stream: carol's page never POSTed anything.
    for page in (boss, carol):
        page.locator(f"{BANNER} .alert-ack").wait_for()
        assert page.locator(f"{BANNER} .alert-ack").inner_text() == "Acknowledged by boss"
        assert page.locator(f"{BANNER} .alert-ack-button").count() == 0
    assert orm(audit_of, RULE) == [("raised", "monitor"), ("acknowledged", "boss")]

    # A fresh page (first paint from REST) shows the acknowledgement too.
    later = pages.open()
    login(later, server.url, "carol")
    later.locator(f"{BANNER} .alert-ack").wait_for()
    assert later.locator(f"{BANNER} .alert-ack").inner_text() == "Acknowledged by boss"

    # The threshold raised: the next poll resolves it and it leaves every page.
    orm(raise_threshold, RULE)
    for page in (boss, carol, later):
        page.locator(BANNER).wait_for(state="detached", timeout=60_000)
    assert orm(audit_of, RULE) == [("raised", "monitor"), ("acknowledged", "boss"), ("resolved", "monitor")]
    assert not pages.page_errors()
