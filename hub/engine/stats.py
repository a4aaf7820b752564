"""This process's counters. Plain integers bumped on the hot path; read by the housekeeping
loop (presence, admin, /metrics) — no per-message Prometheus or database calls."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# Publish-to-socket latency buckets, seconds (Prometheus-style, cumulative when exported).
LATENCY_BUCKETS_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class NodeStats:
    started_at: float = field(default_factory=time.time)
    active_connections: int = 0
    total_connections: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    published: int = 0
    dropped_sends: int = 0
    slow_consumer_closes: int = 0
    coalesced_writes: int = 0  # socket writes that carried several publications (catch-up)
    errors: dict[str, int] = field(default_factory=dict)
    latency_sum: float = 0.0
    latency_count: int = 0
    latency_buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_SECONDS) + 1))

    def connection_opened(self) -> None:
        self.active_connections += 1
        self.total_connections += 1

    def connection_closed(self) -> None:
        self.active_connections -= 1

    def count_error(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1

    def observe_latency(self, seconds: float) -> None:
        self.latency_sum += seconds
        self.latency_count += 1
        for index, bound in enumerate(LATENCY_BUCKETS_SECONDS):
            if seconds <= bound:
                self.latency_buckets[index] += 1
                return
        self.latency_buckets[-1] += 1
