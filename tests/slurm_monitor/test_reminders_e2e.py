"""Reminders end to end (issue 15): the monitor (scripted Slurm, its real HTTP sink and service
account) -> a real daphne -> the owner's rule -> the sender (``deliver_pending``, what
``manage.py run_deliveries`` loops over) -> a webhook receiver and Django's test mailbox.
Alice's job reaches 80 % of its limit and a node it runs on goes down: she is told each once,
live on ``user:alice``, by webhook and (the time limit) by e-mail, and a restarted monitor
does not tell her again. Bob, whose job runs elsewhere and has no limit, is told nothing."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.core import mail

from hub.notify import deliveries
from hub.models import Notification, NotificationRule
from slurm_monitor.collector import SlurmCollector
from slurm_monitor.monitor import History, Monitor
from slurm_monitor.reminders import Reminders, sent_keys
from slurm_monitor.sinks import build_sink
from tests.hub.webhook_receiver import WebhookReceiver
from tests.slurm_monitor.test_monitor import squeue
from tests.slurm_monitor.test_reminders import ALICE, BOB, CN02_DOWN, T0, UP, NodesScripted
from tests.wsutil import connected, recv_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _close_worker_thread_connections(monkeypatch):
    """The receiver is on 127.0.0.1 (allowed here only); ORM calls through sync_to_async run
    in asgiref's worker thread: close its connection, or PostgreSQL cannot drop the test database."""
    monkeypatch.setenv("HUB_WEBHOOK_ALLOW_PRIVATE", "true")
    yield
    from django.db import connections

    await sync_to_async(connections.close_all)()


def monitor_for(slurm, sink, now) -> Monitor:
    return Monitor(SlurmCollector(runner=slurm, timeout=5), sink, source="slurm", clock=lambda: now[0],
                   history=History(sacct_batch=0), reminders=Reminders(0.8, already_sent=sent_keys))


async def test_both_reminders_reach_the_owners_rule_once_and_nobody_else(make_user, hub_server):
    hooks = {name: WebhookReceiver().start() for name in ("alice", "bob")}
    try:
        await _scenario(make_user, hub_server, hooks)
    finally:
        for hook in hooks.values():
            hook.stop()


async def _scenario(make_user, hub_server, hooks):
    def users():
        tokens = {}
        for name in ("alice", "bob"):
            user, tokens[name] = make_user(name)
            user.email = f"{name}@example.org"
            user.save()
            NotificationRule.objects.create(user=user, webhook_url=hooks[name].url, channels={
                "job_time_limit": ["page", "email", "webhook"], "job_node_down": ["page", "webhook"]})
        return tokens

    tokens = await sync_to_async(users)()
    server = hub_server()
    alice_ws, _ = await connected(f"{server.ws_url}/ws/?token={tokens['alice']}")
    sink = await build_sink("http", server.url, "slurm-monitor")
    now = [T0 + 100.0]
    jobs = [squeue("23.11", [ALICE, BOB])]
    first = monitor_for(NodesScripted(jobs, [UP, UP, CN02_DOWN]), sink, now)
    await first.resume()
    await first.poll_jobs()  # nothing saved before: the baseline
    await first.poll_nodes()
    now[0] = T0 + 470  # alice's 10 minutes: 80 % is 480 s; bob's job has no limit
    await first.poll_jobs()
    await first.poll_nodes()
    assert await sync_to_async(Notification.objects.count)() == 0
    now[0] = T0 + 490
    await first.poll_jobs()
    await first.poll_nodes()  # cn02, one of alice's two nodes, stops responding

    live = [await recv_until(alice_ws, lambda f: f["type"] == "notification" and f["data"]["type"] == kind)
            for kind in ("job_time_limit", "job_node_down")]
    assert {f["channel"] for f in live} == {"user:alice"}
    assert live[0]["data"]["title"] == "Job 201 (job201): 110 s left"
    await alice_ws.close()

    # a restart: the monitor resumes from the saved state; 100 s later nothing is new
    now[0] = T0 + 600
    second = monitor_for(NodesScripted(jobs, [CN02_DOWN]), sink, now)
    await second.resume()
    await second.poll_jobs()
    await second.poll_nodes()
    assert second.stats["delivery_failures"] == 0 and first.stats["delivery_failures"] == 0

    def stored():
        return sorted(Notification.objects.filter(type__startswith="job_").values_list("username", "type"))

    assert await sync_to_async(stored)() == [("alice", "job_node_down"), ("alice", "job_time_limit")]
    assert await sync_to_async(deliveries.deliver_pending)() == {"sent": 3, "retry": 0, "failed": 0}
    assert await sync_to_async(deliveries.deliver_pending)() == {"sent": 0, "retry": 0, "failed": 0}
    texts = sorted(p["json"]["text"] for p in hooks["alice"].posts)
    assert len(texts) == 2
    assert texts[0].startswith("Job 201 (job201): 110 s left\nJob 201 (job201) has run 8 min")
    assert texts[1] == ("Node cn02 is down: your job 201\n"
                        "Node cn02, where your job 201 runs, is down (Not responding).")
    assert hooks["bob"].posts == []
    assert [(m.to, m.subject) for m in mail.outbox] == [(["alice@example.org"], "Job 201 (job201): 110 s left")]
