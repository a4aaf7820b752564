"""Stats recording (live row, snapshot series, retention) and the admin pages, read by a
logged-in staff user from a real daphne whose engine records its own figures."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured

from hub.ops import stats_recorder
from hub.engine.base import ProcessStats
from hub.models import BroadcastAudit, HubProcess, StatsSnapshot
from tests.wsutil import connected, recv_until, send_json


@pytest.fixture(autouse=True)
async def _close_worker_thread_connections():
    """sync_to_async runs ORM calls in asgiref's worker thread, whose connection would
    otherwise stay open and keep PostgreSQL from dropping the test database."""
    yield
    from django.db import connections

    await sync_to_async(connections.close_all)()


def stats(server="hub-t", heartbeat=None, **kw) -> ProcessStats:
    now = heartbeat if heartbeat is not None else time.time()
    base = dict(server=server, host="box", pid=42, started_at=now - 100, last_heartbeat=now,
                active_connections=2, total_connections=9, messages_sent=50, messages_received=20,
                errors={"forbidden": 1, "invalid_json": 2}, dropped_sends=3,
                subscriptions={"jobs": 2, "nodes": 1}, publish_latency_sum=0.2, publish_latency_count=4)
    return ProcessStats(**{**base, **kw})


# --- the recorder ------------------------------------------------------------------------------

@pytest.mark.django_db
def test_record_upserts_the_live_row():
    now = time.time()
    stats_recorder.record(stats(heartbeat=now))
    stats_recorder.record(stats(heartbeat=now + 5, active_connections=7, messages_sent=60))
    row = HubProcess.objects.get()
    assert (row.server, row.host, row.pid) == ("hub-t", "box", 42)
    assert (row.active_connections, row.messages_sent, row.subscriptions_total, row.errors_total) == (7, 60, 3, 3)
    assert row.errors == {"forbidden": 1, "invalid_json": 2} and row.dropped_sends == 3
    assert row.last_heartbeat.timestamp() == pytest.approx(now + 5)
    assert row.is_alive


@pytest.mark.django_db
def test_snapshots_at_most_once_per_interval(monkeypatch):
    monkeypatch.setenv("HUB_STATS_SNAPSHOT_SECONDS", "60")
    t0 = time.time() - 200
    for offset, conns in ((0, 1), (5, 2), (59, 3), (61, 4), (125, 5)):
        stats_recorder.record(stats(heartbeat=t0 + offset, active_connections=conns))
    series = list(StatsSnapshot.objects.order_by("recorded_at").values_list("active_connections", flat=True))
    assert series == [1, 4, 5]


@pytest.mark.django_db
def test_old_snapshots_and_long_silent_processes_are_pruned(monkeypatch):
    monkeypatch.setenv("HUB_STATS_RETENTION_DAYS", "2")
    old = time.time() - 3 * 86400
    stats_recorder.record(stats(server="gone", heartbeat=old))
    stats_recorder.record(stats(server="hub-t", heartbeat=old))
    StatsSnapshot.objects.filter(process__server="hub-t").update(
        recorded_at=datetime.now(timezone.utc) - timedelta(days=3))
    stats_recorder.record(stats(server="hub-t"))
    assert list(HubProcess.objects.values_list("server", flat=True)) == ["hub-t"]
    assert StatsSnapshot.objects.count() == 1


@pytest.mark.django_db
def test_a_silent_process_is_not_alive(monkeypatch):
    monkeypatch.setenv("HUB_PROCESS_ALIVE_SECONDS", "10")
    stats_recorder.record(stats(heartbeat=time.time() - 11))
    assert not HubProcess.objects.get().is_alive


@pytest.mark.parametrize("name, value", [("HUB_STATS_SNAPSHOT_SECONDS", "soon"),
                                         ("HUB_STATS_RETENTION_DAYS", "0"),
                                         ("HUB_PROCESS_ALIVE_SECONDS", "-1")])
def test_bad_settings_name_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=name):
        stats_recorder.validate_settings()


# --- the admin, for real ------------------------------------------------------------------------

def admin_session(base_url: str, username: str, password: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base_url}/admin/login/", timeout=10)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    done = session.post(f"{base_url}/admin/login/?next=/admin/", timeout=10, data={
        "csrfmiddlewaretoken": csrf, "username": username, "password": password, "next": "/admin/"})
    assert done.status_code == 200 and "Log out" in done.text, "admin login failed"
    return session


def cell(html: str, field: str) -> list[str]:
    """The text of every changelist cell of ``field``."""
    found = re.findall(rf'<t[dh] class="field-{field}(?: [^"]*)?"[^>]*>(.*?)</t[dh]>', html, re.S)
    return [re.sub(r"<[^>]+>", "", text).strip() for text in found]


@pytest.mark.django_db(transaction=True)
async def test_staff_reads_live_figures_in_the_admin(hub_server, make_user):
    from hub.ops.metrics import record_poll
    from hub.notify.notifications import create_notification

    server = hub_server({"HUB_STATS_SNAPSHOT_SECONDS": "1"}, name="hub-admin")
    admin, admin_token = await sync_to_async(make_user)("boss", True)
    admin.is_superuser = True
    await sync_to_async(admin.save)()
    _alice, alice_token = await sync_to_async(make_user)("alice")
    ws, _ = await connected(f"{server.ws_url}/ws/?token={alice_token}")
    await send_json(ws, {"type": "subscribe", "channels": ["jobs", "nodes"]})
    for _ in range(2):
        await recv_until(ws, lambda f: f["type"] == "subscribed")
    sent = await asyncio.to_thread(
        requests.post, f"{server.url}/api/broadcast", timeout=10, headers={"Authorization": f"Token {admin_token}"},
        json={"channel": "jobs", "message": {"type": "job_submitted", "data": {"job_id": "77"}}})
    assert sent.status_code == 200
    await recv_until(ws, lambda f: f["type"] == "job_submitted")
    await sync_to_async(create_notification)("alice", "job_failed", "Job 77 failed", "oom", severity="error")
    await sync_to_async(record_poll)("jobs", 0.25, True)

    def recorded():  # the engine's housekeeping loop reports every few seconds
        row = HubProcess.objects.filter(server="hub-admin").first()
        return row is not None and row.active_connections == 1 and row.subscriptions_total >= 2 \
            and row.messages_sent >= 4 and row.snapshots.exists() \
            and BroadcastAudit.objects.exists()  # written off the request path (hub.ops.audit)

    for _ in range(150):
        if await sync_to_async(recorded)():
            break
        await asyncio.sleep(0.1)
    assert await sync_to_async(recorded)(), "the server never recorded its stats and the audit row"

    session = await asyncio.to_thread(admin_session, server.url, "boss", "pw-for-tests-only")

    def get(path):
        return asyncio.to_thread(session.get, f"{server.url}{path}", timeout=10)

    processes = (await get("/admin/hub/hubprocess/")).text
    row = cell(processes, "server").index("hub-admin")
    assert cell(processes, "active_connections")[row] == "1"
    assert int(cell(processes, "subscriptions_total")[row]) >= 2
    assert int(cell(processes, "messages_sent")[row]) >= 4
    assert int(cell(processes, "messages_received")[row]) >= 1
    assert cell(processes, "errors_total")[row] == "0"
    assert cell(processes, "dropped_sends")[row] == "0"
    assert 'alt="True"' in re.findall(r'<td class="field-alive">(.*?)</td>', processes, re.S)[row]
    pk = await sync_to_async(lambda: HubProcess.objects.get(server="hub-admin").pk)()
    detail = (await get(f"/admin/hub/hubprocess/{pk}/change/")).text
    assert "hub-admin" in detail and "Last heartbeat" in detail and "Mean publish latency" in detail

    snapshots = (await get("/admin/hub/statssnapshot/")).text
    assert "hub-admin" in cell(snapshots, "process")
    assert "1" in cell(snapshots, "active_connections")

    audit = (await get("/admin/hub/broadcastaudit/")).text
    assert cell(audit, "username") == ["boss"] and cell(audit, "target") == ["jobs"]
    assert cell(audit, "event_type") == ["job_submitted"] and cell(audit, "result") == ["ok"]
    assert cell(audit, "offset") == [str(sent.json()["offset"])]
    assert int(cell(audit, "size_bytes")[0]) > 0

    notes = (await get("/admin/hub/notification/")).text
    assert cell(notes, "title") == ["Job 77 failed"] and cell(notes, "addressee") == ["alice"]

    tokens = (await get("/admin/authtoken/tokenproxy/")).text
    assert {"boss", "alice"} <= set(cell(tokens, "user"))

    polls = (await get("/admin/hub/monitorpollstats/")).text
    assert cell(polls, "stream") == ["jobs"] and cell(polls, "polls_total") == ["1"]
    assert cell(polls, "mean_seconds") == ["0.250"]

    index = (await get("/admin/")).text
    for label in ("Hub processes", "Stats snapshots", "Broadcast audit log", "Notifications", "Tokens"):
        assert label in index
    await ws.close()


# --- the admin in-process: the activity chart, notifications, service accounts ---------------------

@pytest.fixture
def staff_client(db):
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", password="pw-for-tests-only"))
    return client


def polyline(svg_html: str, title: str) -> list[tuple[float, float]]:
    """The points of the chart whose aria-label is ``title``."""
    chart = re.search(rf'<svg[^>]*aria-label="{re.escape(title)}".*?</svg>', svg_html, re.S)
    assert chart, f"no chart {title!r}"
    points = re.search(r'<polyline[^>]*points="([^"]*)"', chart.group(0))
    assert points, f"chart {title!r} has no line"
    return [tuple(map(float, p.split(","))) for p in points.group(1).split()]


def test_the_process_page_draws_its_stored_series(staff_client):
    t0 = time.time() - 600
    stats_recorder.record(stats(heartbeat=t0))
    process = HubProcess.objects.get()
    process.snapshots.all().delete()
    connections = [2, 5, 9, 4]
    sent = [100, 160, 400, 100]  # the last one: the process restarted (counter reset)
    for i, (conns, out) in enumerate(zip(connections, sent)):
        StatsSnapshot.objects.create(process=process, recorded_at=datetime.fromtimestamp(t0 + 60 * i, timezone.utc),
                                     active_connections=conns, messages_sent=out, messages_received=20)
    page = staff_client.get(f"/admin/hub/hubprocess/{process.pk}/change/").content.decode()

    conns = polyline(page, "Connections")
    assert len(conns) == 4
    assert [x for x, _ in conns] == sorted(x for x, _ in conns)  # oldest left
    ys = [y for _, y in conns]  # SVG y grows downwards: more connections, smaller y
    assert ys.index(min(ys)) == 2 and ys.index(max(ys)) == 0
    assert ys[1] < ys[3] < ys[0]
    assert "Connections: now 4, max 9" in page

    rate = polyline(page, "Messages/s (sent + received)")
    assert len(rate) == 3  # one per interval between snapshots
    # (60 + 0)/60 = 1/s, 240/60 = 4/s, after the reset (100 + 20)/60 = 2/s
    assert "now 2 /s, max 4 /s" in page
    assert rate[1][1] < rate[2][1] < rate[0][1]


def test_a_process_without_snapshots_says_so(staff_client):
    stats_recorder.record(stats())
    process = HubProcess.objects.get()
    process.snapshots.all().delete()
    page = staff_client.get(f"/admin/hub/hubprocess/{process.pk}/change/").content.decode()
    assert page.count("no snapshots yet") == 2 and "<polyline" not in page


def test_mark_read_leaves_cluster_wide_rows_to_each_user(staff_client):
    from hub.models import Notification, NotificationRead
    from hub.notify.notifications import list_notifications

    mine = Notification.objects.create(username="alice", type="job_failed", title="Job 1 failed")
    everyone = Notification.objects.create(username=None, type="node_down", title="cn01 down")
    NotificationRead.objects.create(notification=everyone, username="bob")
    listing = staff_client.get("/admin/hub/notification/").content.decode()
    assert sorted(cell(listing, "addressee")) == ["(cluster-wide)", "alice"]
    assert sorted(cell(listing, "read_state")) == ["no", "read by 1"]

    done = staff_client.post("/admin/hub/notification/", {
        "action": "mark_read", "_selected_action": [mine.pk, everyone.pk]}, follow=True)
    text = done.content.decode()
    assert "1 notification(s) marked read" in text and "1 cluster-wide notification(s) left" in text
    mine.refresh_from_db()
    everyone.refresh_from_db()
    assert mine.read and not everyone.read
    # alice still has the cluster-wide one to read; bob had read it
    assert list_notifications("alice")["unread"] == 1 and list_notifications("bob")["unread"] == 0

    cluster_only = staff_client.get("/admin/hub/notification/?scope=cluster").content.decode()
    assert cell(cluster_only, "title") == ["cn01 down"]


def test_service_accounts_are_listed_read_only(staff_client):
    from django.contrib.auth import get_user_model

    from hub.models import ServiceAccount

    user = get_user_model().objects.create_user("slurm-monitor")
    account = ServiceAccount.objects.create(user=user, service="slurm-monitor")
    listing = staff_client.get("/admin/hub/serviceaccount/").content.decode()
    assert cell(listing, "user") == ["slurm-monitor"] and cell(listing, "service") == ["slurm-monitor"]
    assert staff_client.get("/admin/hub/serviceaccount/add/").status_code == 403
    assert staff_client.get(f"/admin/hub/serviceaccount/{account.pk}/delete/").status_code == 403
    detail = staff_client.get(f"/admin/hub/serviceaccount/{account.pk}/change/").content.decode()
    assert 'name="service"' not in detail  # shown, not editable
