"""Contracts between the engine and the rest of the hub: stats and presence records.

These frozen dataclasses are what selectors, the REST API, the admin and /metrics read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ProcessStats:
    """One hub server process's live figures (cluster-wide via the presence backend)."""

    server: str
    host: str
    pid: int
    started_at: float  # unix seconds
    last_heartbeat: float  # unix seconds
    active_connections: int
    total_connections: int
    messages_sent: int
    messages_received: int
    errors: dict[str, int] = field(default_factory=dict)  # by error code
    dropped_sends: int = 0
    slow_consumer_closes: int = 0
    coalesced_writes: int = 0  # socket writes carrying several publications (a catch-up)
    subscriptions: dict[str, int] = field(default_factory=dict)  # channel -> local subscribers
    publish_latency_sum: float = 0.0
    publish_latency_count: int = 0
    # per-bucket counts over hub.engine.stats.LATENCY_BUCKETS_SECONDS, +Inf last
    publish_latency_buckets: tuple[int, ...] = ()
    alive: bool = True


@dataclass(frozen=True)
class ClientInfo:
    client_id: str
    user: str | None
    channels: tuple[str, ...]
    state: str  # "authenticating" | "connected"
    connected_at: str  # ISO 8601 UTC
    last_ping: str | None
    last_pong: str | None
    server: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChannelInfo:
    name: str
    subscriber_count: int
    subscribers: tuple[str, ...]  # client ids
    last_offset: int
    epoch: str
