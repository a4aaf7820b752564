"""hub.ops.audit writes rows off the request path: a bounded queue drained by a background
thread with bulk_create; rows that cannot be queued or written are counted and logged,
never dropped silently. And the broadcast route's credential cache (hub.rest.rest_auth)."""

from __future__ import annotations

import logging
import time

import pytest

from hub.ops import audit
from hub.ops.metrics import AUDIT_ROWS_SHED
from hub.models import BroadcastAudit
from hub.policies import Principal
from hub.rest.rest_auth import Identity, IdentityCache

TARGET = audit.target_for(channel="jobs")


@pytest.fixture
def caplog(caplog):
    """The hub's loggers may not propagate to the root logger: capture hub.ops.audit directly."""
    logger = logging.getLogger("hub.ops.audit")
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


@pytest.fixture(autouse=True)
def _empty_queue():
    audit.discard()
    yield
    audit.discard()
    audit.set_limit(audit.QUEUE_SIZE_DEFAULT)


def shed_count(reason: str) -> float:
    return AUDIT_ROWS_SHED.labels(reason=reason)._value.get()


@pytest.mark.django_db(transaction=True)
def test_the_writer_thread_delivers_queued_rows_in_batches():
    for n in range(1200):
        audit.record("svc", TARGET, "tick", 10, audit.RESULT_OK, offset=n + 1)
    assert not BroadcastAudit.objects.exists()  # nothing written on the caller's path
    audit.start_writer()
    try:
        deadline = time.monotonic() + 30
        while BroadcastAudit.objects.count() < 1200 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        audit.stop_writer()
    offsets = sorted(BroadcastAudit.objects.values_list("offset", flat=True))
    assert offsets == list(range(1, 1201))
    assert audit.pending() == 0


def test_a_full_queue_sheds_counts_and_logs(caplog):
    audit.set_limit(3)
    before = shed_count("queue_full")
    with caplog.at_level(logging.ERROR, logger="hub.ops.audit"):
        for _ in range(5):
            audit.record("svc", TARGET, "tick", 10, audit.RESULT_OK)
    assert audit.pending() == 3
    assert shed_count("queue_full") - before == 2
    assert "1 row(s) shed (queue_full" in caplog.text


@pytest.mark.django_db
def test_a_batch_the_database_refuses_is_counted(monkeypatch, caplog):
    monkeypatch.setattr(audit, "_COLUMNS", (*audit._COLUMNS[:-1], "no_such_column"))  # e.g. a schema behind
    audit.record("svc", TARGET, "tick", 10, audit.RESULT_OK)
    audit.record("svc", TARGET, "tick", 10, audit.RESULT_OK)
    before = shed_count("write_failed")
    with caplog.at_level(logging.ERROR, logger="hub.ops.audit"):
        assert audit.flush() == 0
    assert shed_count("write_failed") - before == 2
    assert "no_such_column" in caplog.text and not BroadcastAudit.objects.exists()


def test_cached_identities_expire_after_the_ttl_and_can_be_forgotten():
    now = [100.0]
    cache = IdentityCache(ttl=5.0, size=2, clock=lambda: now[0])
    alice = Identity(1, Principal("alice", can_broadcast=True))
    cache.put("token", "k1", alice)
    now[0] += 4.9
    assert cache.get("token", "k1") is alice
    now[0] += 0.2  # past the TTL: a deleted token resolves again, and fails, in DRF
    assert cache.get("token", "k1") is None
    cache.put("token", "k1", alice)
    cache.forget(user_id=1)
    assert cache.get("token", "k1") is None
    for n in range(3):  # bounded: the oldest entry goes
        cache.put("token", f"k{n}", alice)
    assert cache.get("token", "k0") is None and cache.get("token", "k2") is alice


def test_an_expired_jwt_is_not_served_from_the_cache():
    cache = IdentityCache(ttl=60.0)
    cache.put("bearer", "a.b.c", Identity(1, Principal("alice"), expires=time.time() - 1))
    assert cache.get("bearer", "a.b.c") is None
