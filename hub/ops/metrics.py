"""Prometheus exposition at ``/metrics``, built at scrape time — never on the hot path.

Scraping model: every hub process publishes its ProcessStats (engine housekeeping loop)
to the presence backend, and ``hub.rest.selectors.list_processes()`` returns those of EVERY
process (with Redis: cluster-wide). So one ``/metrics`` answer holds the whole cluster,
each series labelled ``server``: scrape ANY ONE process (or the load balancer in front of
them) as a single target and aggregate with ``sum without (server)``. Scraping each daphne
separately also works but every target then reports the same cluster series (dedupe with
``max by (server)``). If the live backend is down, the figures the processes last wrote to
the database (HubProcess, see hub.ops.stats_recorder) are served instead and ``hub_stats_live``
is 0.

The Slurm monitor is another process: it calls ``record_poll(stream, seconds, ok, cluster)``
after each poll, which adds to a MonitorPollStats row (one per cluster and stream, labelled
``cluster``); every hub's /metrics reads those rows, and each stream's heartbeat
(``hub_slurm_stream_age_seconds``, aged at scrape time).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone

from asgiref.sync import async_to_sync, sync_to_async
from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponse
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from hub.engine.contracts import CALL_DEADLINE_SECONDS, ProcessStats
from hub.engine.errors import HubUnavailable
# Publish-to-socket latency bounds, seconds; the engine counts per bucket (+Inf last).
from hub.engine.stats import LATENCY_BUCKETS_SECONDS
from slurm_monitor.exporter import ClusterCollector

logger = logging.getLogger(__name__)

LIST_PROCESSES_TIMEOUT_SECONDS = CALL_DEADLINE_SECONDS  # the engine's one deadline
POLL_BUCKETS_SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


# --- the hub processes -------------------------------------------------------------------

def _stats_from_rows() -> list[ProcessStats]:
    from hub.models import HubProcess

    return [
        ProcessStats(
            server=p.server, host=p.host, pid=p.pid, started_at=p.started_at.timestamp(),
            last_heartbeat=p.last_heartbeat.timestamp(), active_connections=p.active_connections,
            total_connections=p.total_connections, messages_sent=p.messages_sent,
            messages_received=p.messages_received, errors=dict(p.errors),
            dropped_sends=p.dropped_sends, slow_consumer_closes=p.slow_consumer_closes,
            subscriptions=dict(p.subscriptions), publish_latency_sum=p.publish_latency_sum,
            publish_latency_count=p.publish_latency_count, alive=p.is_alive,
        )
        for p in HubProcess.objects.all()
    ]


async def _list_live() -> list[ProcessStats]:
    from hub.rest import selectors

    try:
        return list(await asyncio.wait_for(selectors.list_processes(), LIST_PROCESSES_TIMEOUT_SECONDS))
    except asyncio.TimeoutError:
        raise HubUnavailable("hub", "process list timed out") from None


def load_processes() -> tuple[list[ProcessStats], bool]:
    """(stats of every process, whether they came from the live backend)."""
    try:
        return async_to_sync(_list_live)(), True
    except HubUnavailable as exc:
        logger.warning("/metrics: live stats unavailable (%s); serving database figures", exc)
        return _stats_from_rows(), False


OTHER_CHANNELS_LABEL = "other"


def channel_label(channel: str) -> str:
    """The ``channel`` label: never a name a client chose (cardinality, privacy). A channel
    with an exact policy (the built-ins, a site's HUB_CHANNELS names) keeps its name; one
    matched by a prefix policy is that pattern (``user:*``, ``chat.*``); any other name,
    chosen on first use under the catch-all, is ``other``."""
    from hub.conf import get_policies

    policy = get_policies().resolve(channel)
    if policy is None or policy.pattern == "*":
        return OTHER_CHANNELS_LABEL
    return policy.pattern


def _latency_buckets(stats: ProcessStats) -> list[tuple[str, float]]:
    """Cumulative buckets from ``stats.publish_latency_buckets`` (per-bucket counts over
    LATENCY_BUCKETS_SECONDS, +Inf last, as the engine's NodeStats keeps them); only the +Inf
    bucket (= count) when the stats do not carry them."""
    counts = getattr(stats, "publish_latency_buckets", None)
    if not counts or len(counts) != len(LATENCY_BUCKETS_SECONDS) + 1:
        return [("+Inf", float(stats.publish_latency_count))]
    buckets, running = [], 0
    for bound, count in zip((*LATENCY_BUCKETS_SECONDS, float("inf")), counts):
        running += count
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), float(running)))
    return buckets


class HubCollector(Collector):
    """Series for every hub process, labelled ``server``; alive processes only, except
    ``hub_process_alive`` which also shows the silent ones as 0."""

    def collect(self) -> Iterable:
        processes, live = load_processes()
        yield GaugeMetricFamily("hub_stats_live", "1 if figures came from the live backend, "
                                "0 if from the database fallback", value=1 if live else 0)
        alive = GaugeMetricFamily("hub_process_alive", "1 while the process heartbeats", labels=["server"])
        for p in processes:
            alive.add_metric([p.server], 1 if p.alive else 0)
        yield alive
        running = [p for p in processes if p.alive]
        yield from _process_families(running)


def _per_server(family, processes: Sequence[ProcessStats], attr: str):
    for p in processes:
        family.add_metric([p.server], float(getattr(p, attr)))
    return family


def _process_families(processes: Sequence[ProcessStats]) -> Iterable:
    srv = ["server"]
    yield _per_server(GaugeMetricFamily("hub_process_start_time_seconds", "Unix start time", labels=srv),
                      processes, "started_at")
    yield _per_server(GaugeMetricFamily("hub_process_last_heartbeat_seconds", "Unix time of the last heartbeat",
                                        labels=srv), processes, "last_heartbeat")
    yield _per_server(GaugeMetricFamily("hub_connections", "Open WebSocket connections", labels=srv),
                      processes, "active_connections")
    yield _per_server(CounterMetricFamily("hub_connections_opened", "WebSocket connections accepted",
                                          labels=srv), processes, "total_connections")
    yield _per_server(CounterMetricFamily("hub_frames_received", "Client frames received", labels=srv),
                      processes, "messages_received")
    yield _per_server(CounterMetricFamily("hub_frames_sent", "Frames sent to clients", labels=srv),
                      processes, "messages_sent")
    yield _per_server(CounterMetricFamily("hub_dropped_sends", "Sends dropped (slow consumer queue full)",
                                          labels=srv), processes, "dropped_sends")
    yield _per_server(CounterMetricFamily("hub_slow_consumer_closes", "Sockets closed as slow consumers",
                                          labels=srv), processes, "slow_consumer_closes")
    yield _per_server(CounterMetricFamily(
        "hub_coalesced_writes", "Socket writes that carried several publications (fan-out catching up)",
        labels=srv), processes, "coalesced_writes")
    subs = GaugeMetricFamily("hub_subscriptions", "Subscriptions by channel policy: built-in and configured names, "
                             "prefix patterns (user:*), other (client-chosen names summed)",
                             labels=["server", "channel"])
    errors = CounterMetricFamily("hub_errors", "Protocol errors sent, by code", labels=["server", "code"])
    latency = HistogramMetricFamily("hub_publish_latency_seconds", "Publish-to-socket latency",
                                    labels=srv)
    for p in processes:
        per_label: dict[str, int] = {}
        for channel, count in p.subscriptions.items():
            label = channel_label(channel)
            per_label[label] = per_label.get(label, 0) + count
        for label, count in sorted(per_label.items()):
            subs.add_metric([p.server, label], float(count))
        for code, count in sorted(p.errors.items()):
            errors.add_metric([p.server, code], float(count))
        latency.add_metric([p.server], _latency_buckets(p), p.publish_latency_sum)
    yield subs
    yield errors
    yield latency


# --- the Slurm monitor -------------------------------------------------------------------

def _bucket_index(seconds: float) -> int:
    for index, bound in enumerate(POLL_BUCKETS_SECONDS):
        if seconds <= bound:
            return index
    return len(POLL_BUCKETS_SECONDS)


def record_poll(stream: str, seconds: float, ok: bool, cluster: str = "") -> None:
    """Count one Slurm monitor poll of ``stream`` (e.g. "jobs", "nodes") of ``cluster`` (its
    ``cluster`` column value, slurm_monitor.clusters: the row is ``clusters.stream_key``).
    Sync, one small DB write; never raises (metrics must not break the monitor)."""
    from hub.models import MonitorPollStats
    from slurm_monitor.clusters import stream_key

    try:
        with transaction.atomic():
            row, _ = MonitorPollStats.objects.select_for_update().get_or_create(
                stream=stream_key(cluster, stream)[:100])
            counts = list(row.bucket_counts)
            counts += [0] * (len(POLL_BUCKETS_SECONDS) + 1 - len(counts))
            counts[_bucket_index(seconds)] += 1
            row.bucket_counts = counts
            row.polls_total += 1
            row.errors_total += 0 if ok else 1
            row.duration_sum += max(seconds, 0.0)
            row.last_poll_at = datetime.now(tz=timezone.utc)
            row.last_ok = ok
            row.save()
    except DatabaseError:
        logger.exception("record_poll(%r) could not be stored", stream)


arecord_poll = sync_to_async(record_poll)


class MonitorCollector(Collector):
    def collect(self) -> Iterable:
        from hub.models import MonitorPollStats

        from slurm_monitor.cluster_scope import primary_name
        from slurm_monitor.clusters import display, split_key

        stream = ["cluster", "stream"]
        primary = primary_name()
        duration = HistogramMetricFamily("slurm_monitor_poll_duration_seconds",
                                         "Slurm monitor poll duration", labels=stream)
        polls = CounterMetricFamily("slurm_monitor_polls", "Slurm monitor polls", labels=stream)
        errors = CounterMetricFamily("slurm_monitor_poll_errors", "Slurm monitor failed polls", labels=stream)
        last = GaugeMetricFamily("slurm_monitor_last_poll_seconds", "Unix time of the last poll",
                                 labels=stream)
        for row in MonitorPollStats.objects.all():
            column, name = split_key(row.stream)
            labels = [display(column, primary), name]
            counts = list(row.bucket_counts) + [0] * (len(POLL_BUCKETS_SECONDS) + 1 - len(row.bucket_counts))
            buckets, running = [], 0
            for bound, count in zip((*POLL_BUCKETS_SECONDS, None), counts):
                running += count
                buckets.append(("+Inf" if bound is None else repr(bound), float(running)))
            duration.add_metric(labels, buckets, row.duration_sum)
            polls.add_metric(labels, float(row.polls_total))
            errors.add_metric(labels, float(row.errors_total))
            if row.last_poll_at is not None:
                last.add_metric(labels, row.last_poll_at.timestamp())
        yield from (duration, polls, errors, last)
        yield from stream_age_families()


def stream_age_families() -> Iterable:
    """Each monitor stream's age, computed at scrape time from its heartbeat, and its
    interval: alert on ``age > 3 * interval`` (what /api/health calls degraded). Labelled
    ``cluster`` (the heartbeat's, slurm_monitor.clusters) and ``stream``."""
    import time

    from slurm_monitor.metrics import stream_age
    from slurm_monitor.heartbeats import load_heartbeats

    age = GaugeMetricFamily("hub_slurm_stream_age_seconds",
                            "Seconds since the Slurm monitor stream's last successful poll",
                            labels=["cluster", "stream"])
    interval = GaugeMetricFamily("hub_slurm_stream_interval_seconds",
                                 "Seconds between the Slurm monitor stream's polls", labels=["cluster", "stream"])
    now = time.time()
    for beat in load_heartbeats():
        stream = stream_age(beat.stream, beat.interval, beat.ok, beat.last_ok_at, beat.first_at, now)
        age.add_metric([beat.cluster, stream.stream], stream.age_seconds)
        interval.add_metric([beat.cluster, stream.stream], stream.interval_seconds)
    yield from (age, interval)
    yield from cadence_families()


def cadence_families() -> Iterable:
    """The monitor's cadence per stream: the configured interval (``..._interval_seconds``
    above is the current one) and why they differ, as a 1-valued gauge labelled ``reason``
    (normal, recovering, slow, failing, busy: ``slurm_monitor.cadence.REASONS``)."""
    from hub.rest.selectors import monitor_cadences

    base = GaugeMetricFamily("hub_slurm_stream_base_interval_seconds",
                             "Configured seconds between the Slurm monitor stream's polls",
                             labels=["cluster", "stream"])
    reason = GaugeMetricFamily("hub_slurm_stream_cadence", "1 for the reason of the stream's current "
                               "interval (normal, recovering, slow, failing, busy)",
                               labels=["cluster", "stream", "reason"])
    for beat in monitor_cadences():
        if beat.base_interval is not None:
            base.add_metric([beat.cluster, beat.stream], beat.base_interval)
        reason.add_metric([beat.cluster, beat.stream, beat.reason], 1.0)
    yield from (base, reason)


REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(HubCollector())
REGISTRY.register(MonitorCollector())
# The cluster gauges (slurm_jobs, slurm_nodes, slurm_cpus, ...): see slurm_monitor.exporter.
REGISTRY.register(ClusterCollector())

# Broadcast audit rows that were never written (hub.ops.audit): ``queue_full`` (the bounded queue
# shed them) or ``write_failed`` (the database refused a batch). Per process: the one scraped.
AUDIT_ROWS_SHED = Counter("hub_audit_rows_shed", "Broadcast audit rows shed, never written",
                          ["reason"], registry=REGISTRY)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics: Prometheus text (or OpenMetrics when the scraper asks for it)."""
    if request.method not in ("GET", "HEAD"):
        response = HttpResponse(b'{"code": "method_not_allowed", "message": "use GET"}',
                                status=405, content_type="application/json")
        response["Allow"] = "GET, HEAD"
        return response
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(REGISTRY), content_type=content_type)
