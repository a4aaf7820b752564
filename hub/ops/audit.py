"""The broadcast audit trail (BroadcastAudit: who, when, target, event type, size, result),
written OFF the request path.

``record(...)`` only appends a row to a bounded in-process queue (a deque: no lock, no
wake-up per row); a daemon thread (``start_writer``, started by the ASGI application on its
first HTTP request) writes the queue with ``bulk_create`` every FLUSH_SECONDS, or sooner
when BATCH rows are waiting. Why: an INSERT per publication (a SQLite transaction with its
WAL sync) was most of what ``POST /api/broadcast`` cost; one transaction per batch is
nearly free per row.

Never dropped silently: when the queue holds HUB_AUDIT_QUEUE_SIZE rows (default 100,000,
a few seconds of the fastest publisher) the row is shed, counted in
``hub_audit_rows_shed_total{reason="queue_full"}`` (hub.ops.metrics) and logged (one line per
LOG_EVERY_SECONDS with the count); a batch the database refuses is counted with
``reason="write_failed"`` and logged with the error.

Rows reach the table within about FLUSH_SECONDS (``created_at`` is the write time, not the
request's). ``flush()`` writes what is queued now, in the caller's thread (tests, shutdown).
Without a running writer (e.g. the in-process test client) rows wait in the queue until a
``flush()``.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from hub import publish as hub_publish
from hub.ops.metrics import AUDIT_ROWS_SHED

logger = logging.getLogger(__name__)

RESULT_OK = "ok"
RESULT_UNAVAILABLE = "hub_unavailable"
RESULT_INTERNAL = "internal_error"
RESULT_TOO_LARGE = "payload_too_large"
RESULT_FORBIDDEN = "permission_denied"  # refused by the publish rule (hub.policies.may_publish)

FLUSH_SECONDS = 0.25
BATCH = 500
LOG_EVERY_SECONDS = 10.0
QUEUE_SIZE_DEFAULT = 100_000


@dataclass(frozen=True, slots=True)
class BroadcastTarget:
    kind: str  # "channel" | "all" | "user"
    name: str  # channel name, "all", or username

    @property
    def channel(self) -> str:
        if self.kind == "user":
            return hub_publish.user_channel(self.name)
        return self.name


def encoded_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON: the size the audit log records."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def target_for(*, channel: str | None = None, user: str | None = None) -> BroadcastTarget:
    if user is not None:
        return BroadcastTarget("user", user)
    if channel == hub_publish.ALL_CHANNEL:
        return BroadcastTarget("all", channel)
    return BroadcastTarget("channel", channel or "")


def _queue_size() -> int:
    raw = os.environ.get("HUB_AUDIT_QUEUE_SIZE", "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else QUEUE_SIZE_DEFAULT


_rows: deque[tuple] = deque()
_limit = _queue_size()
_wake = threading.Event()
_writer: threading.Thread | None = None
_writer_lock = threading.Lock()
_flush_lock = threading.Lock()  # one bulk_create at a time (writer thread vs flush())
_shed_unlogged = 0
_shed_logged_at = -LOG_EVERY_SECONDS


def record(username: str, target: BroadcastTarget, event: str, size: int, result: str, *,
           offset: int | None = None, error: str = "") -> None:
    """Queue one audit row (any thread, never blocks, never touches the database)."""
    if len(_rows) >= _limit:
        shed(1, "queue_full")
        return
    _rows.append((username[:150], target.kind, target.name[:200], event[:100], size,
                  result[:40], offset, error[:2000]))
    if len(_rows) >= BATCH and _writer is not None:
        _wake.set()


def shed(count: int, reason: str, detail: str = "") -> None:
    """Count ``count`` rows that will never be written, and say so in the log (a full queue:
    one line per LOG_EVERY_SECONDS with the count since the last line)."""
    global _shed_unlogged, _shed_logged_at
    AUDIT_ROWS_SHED.labels(reason=reason).inc(count)
    if reason != "queue_full":
        logger.error("broadcast audit: %d row(s) shed (%s): %s", count, reason, detail)
        return
    _shed_unlogged += count
    now = time.monotonic()
    if now - _shed_logged_at >= LOG_EVERY_SECONDS:
        logger.error("broadcast audit: %d row(s) shed (queue_full: more than %d waiting)",
                     _shed_unlogged, _limit)
        _shed_unlogged, _shed_logged_at = 0, now


def pending() -> int:
    return len(_rows)


def flush() -> int:
    """Write every queued row now, in this thread; returns how many were written."""
    written = 0
    with _flush_lock:
        while _rows:
            batch: list[tuple] = []
            while _rows and len(batch) < BATCH:
                batch.append(_rows.popleft())
            written += _write(batch)
    return written


def _write(batch: list[tuple]) -> int:
    """One INSERT statement run for the whole batch (``executemany`` in one transaction).
    Why not ``bulk_create``: building a model instance per row cost ~60 µs a row, more than
    publishing it; this costs a few."""
    from django.db import connection, transaction
    from django.utils import timezone

    from hub.models import BroadcastAudit

    table = connection.ops.quote_name(BroadcastAudit._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in _COLUMNS)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(_COLUMNS))})"
    created = connection.ops.adapt_datetimefield_value(timezone.now())
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, [(created, *row) for row in batch])
    except Exception as exc:  # the database down or refusing: counted, logged, never silent
        shed(len(batch), "write_failed", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return 0
    return len(batch)


# The row tuples ``record`` queues, after ``created_at`` (hub.models.BroadcastAudit).
_COLUMNS = ("created_at", "username", "target_kind", "target", "event_type", "size_bytes", "result",
            "offset", "error")


def _run_writer(stop: threading.Event) -> None:
    from django.db import close_old_connections

    while not stop.is_set():
        _wake.wait(FLUSH_SECONDS)
        _wake.clear()
        if not _rows:
            continue
        try:
            close_old_connections()  # a long-lived thread: drop a connection the server closed
            flush()
        except Exception:  # a bug must not kill the writer (a failed batch is counted in _write)
            logger.exception("broadcast audit writer failed")
    close_old_connections()


_stop = threading.Event()


def start_writer() -> None:
    """Start the background writer (idempotent; any thread)."""
    global _writer
    if _writer is not None:
        return
    with _writer_lock:
        if _writer is None:
            _stop.clear()
            thread = threading.Thread(target=_run_writer, args=(_stop,), name="hub-audit-writer",
                                      daemon=True)
            thread.start()
            _writer = thread
            atexit.register(_flush_at_exit)


def _flush_at_exit() -> None:
    """Rows still queued when the server stops (at most about FLUSH_SECONDS' worth)."""
    try:
        flush()
    except Exception:
        logger.exception("broadcast audit: rows queued at exit not written")


def stop_writer() -> None:
    """Stop the background writer after its current batch (tests; queued rows stay queued)."""
    global _writer
    with _writer_lock:
        if _writer is not None:
            _stop.set()
            _wake.set()
            _writer.join(timeout=30)
            _writer = None


def discard() -> int:
    """Tests: forget queued rows (another test's); returns how many."""
    count = len(_rows)
    _rows.clear()
    return count


def set_limit(rows: int) -> None:
    """Tests and tuning: the queue bound (HUB_AUDIT_QUEUE_SIZE at start-up)."""
    global _limit
    _limit = rows
