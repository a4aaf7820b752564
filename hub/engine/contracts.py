"""The engine's contracts: the records it hands out and the typed interfaces between its parts.

Layers (after centrifuge): transport -> consumer -> **node** (facade: publish, subscribe with
recovery) -> **hub** (this process's connections, subscriptions, fan-out passes) and
**broker** (moves publications and control messages between server processes), with a
**history** (offsets, epochs, replay) and a **presence** (client ids, per-user counts,
cluster figures) beside them. Two twins implement ``History``, ``Presence`` and ``Broker``:
``hub.engine.memory`` (one process, no Redis) and ``hub.engine.redis``; one contract suite
(tests/hub/test_backends.py) runs over both. The node never asks which twin it holds: every
difference sits behind a method here. Only backends raise ``HubUnavailable``.

Imports nothing from the hub at run time, so every engine module may import it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # types only: the writer lives with the socket side
    from hub.engine.transport import Payload

# The one deadline for a call into the engine that someone is waiting on: a publication
# (REST answers within 2 s, PROTOCOL.md §6: so one attempt plus its retry must fit), a read
# for REST or /metrics, a group join on the subscribe path. One figure because these calls
# nest (a REST publish waits for the engine's publish, which waits for Redis): separate
# timeouts per layer drifted apart (1.5 s around 2 x 0.85 s around 2.5 s) and an inner one
# longer than its caller's turned a slow Redis into a spurious 503 plus a publication that
# did happen. Callers outside the engine (hub.rest.apis, hub.ops.audit, hub.ops.metrics) import this.
CALL_DEADLINE_SECONDS = 1.5


# --- records --------------------------------------------------------------------------------

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


ClusterState = tuple[list[ProcessStats], list[ClientInfo]]

# One publication for ``History.append_many`` / ``Broker.publish_many``: (channel, maxlen,
# head, tail); the frame is ``head + str(offset) + tail``.
Appendable = tuple[str, int, str, str]


# --- what the engine needs from a socket ------------------------------------------------------

class Connection(Protocol):
    """A socket as the hub sees it (the consumer; tests use recording fakes). Writes never
    block: they queue or drop, and report which (``False``: dropped)."""

    client_id: str
    username: str | None

    def write_payload(self, payload: Payload) -> bool: ...
    def write_text(self, text: str) -> bool: ...
    def request_close(self, code: int) -> None: ...


class Client(Connection, Protocol):
    """A socket the node answers frames on (subscribe with recovery): errors are counted."""

    def write_error(self, exc: Any) -> None: ...  # a hub.socket.protocol.ProtocolError


# --- backends -------------------------------------------------------------------------------

class History(Protocol):
    """Per-channel offsets, epochs and a bounded replay window (PROTOCOL.md §4-5).

    A channel's state is made by its first publication and expires ``ttl_seconds`` after
    its last; reading a channel makes nothing. Offsets grow by one per publication; a new
    life of a channel (expiry, lost data, restart) has a new epoch."""

    ttl_seconds: float

    async def append(self, channel: str, maxlen: int, head: str,
                     tail: str) -> tuple[int, str, str]:
        """Next offset; keeps ``head + offset + tail`` (``maxlen`` = 0: keeps no frame).
        Returns (offset, frame text, epoch). Does not deliver (see ``Broker.publish``)."""
    async def append_many(self, items: list[Appendable]) -> list[tuple[int, str, str]]:
        """``append`` for each ``(channel, maxlen, head, tail)`` in order, in one step (one
        round trip with Redis, atomic there: nothing else is appended in between)."""
    async def top(self, channel: str) -> tuple[int, str]: ...
    async def since(self, channel: str,
                    offset: int) -> tuple[list[tuple[int, str]] | None, int, str]:
        """(publications after ``offset``, top, epoch); None when history cannot reach back."""
    async def positions(self, channels: Iterable[str]) -> dict[str, tuple[int, str]]: ...
    async def last_offsets(self, channels: list[str]) -> dict[str, int]: ...
    async def touch(self, channels: Iterable[str]) -> None:
        """Keep these channels alive another TTL (never revives an expired one)."""
    async def sweep(self) -> int:
        """Drop expired channels this backend must expire itself; returns how many."""
    async def ping(self) -> None:
        """Raise HubUnavailable unless the backing store answers."""


class Presence(Protocol):
    """Client ids (unique cluster-wide), per-user connection counts, cluster figures."""

    async def claim_client(self, client_id: str, user: str | None, server: str) -> bool: ...
    async def release_client(self, client_id: str, user: str | None) -> None: ...
    async def add_user_connection(self, user: str, client_id: str) -> int: ...
    async def remove_user_connection(self, user: str, client_id: str) -> None: ...
    async def publish_state(self, stats: ProcessStats,
                            list_clients: Callable[[], list[ClientInfo]]) -> None:
        """Share this process's figures; ``list_clients()`` is called only by a backend that
        shares the client list (building it costs a walk over every socket)."""
    async def cluster_state(self, local: Callable[[], ClusterState]) -> ClusterState:
        """Every live process's figures and clients; ``local()`` is this process's own."""


class BrokerHandler(Protocol):
    """What a broker hands arrivals to (the node wires the hub's methods in)."""

    def on_publication(self, channel: str, offset: int, text: str,
                       published_at: float | None, epoch: str | None) -> None: ...
    def on_control(self, data: dict) -> None: ...
    async def on_joined(self, channel: str) -> None:
        """Delivery of ``channel`` to this process is proven (under the channel's lock)."""
    def is_wanted(self, channel: str) -> bool:
        """``channel`` still has local subscribers (a pending leave is then skipped)."""
    def on_left(self, channel: str) -> None:
        """The channel is left: forget what was kept for it (under the channel's lock)."""


class NoHandler:
    """The handler of a broker not started yet: arrivals are dropped, nothing is wanted."""

    def on_publication(self, channel: str, offset: int, text: str,
                       published_at: float | None, epoch: str | None) -> None:
        return None

    def on_control(self, data: dict) -> None:
        return None

    async def on_joined(self, channel: str) -> None:
        return None

    def is_wanted(self, channel: str) -> bool:
        return False

    def on_left(self, channel: str) -> None:
        return None


NO_HANDLER = NoHandler()


class Broker(Protocol):
    """Moves publications between server processes, each to the processes that joined its
    channel, in offset order per channel; and rare control messages to every process."""

    delivery_suspect: bool  # a probe failed; the next good one triggers a catch-up

    async def start(self, handler: BrokerHandler) -> None:
        """Begin receiving (idempotent); arrivals go to ``handler``."""
    def stop(self) -> None: ...
    async def publish(self, channel: str, maxlen: int, head: str, tail: str,
                      published_at: float) -> int:
        """Append to the history and deliver to every joined process, this one included;
        returns the offset. Raises HubUnavailable (nothing published, or not known to be)."""
    async def publish_many(self, items: list[Appendable], published_at: float) -> list[int]:
        """``publish`` for each ``(channel, maxlen, head, tail)`` in order, in one step: the
        offsets of one channel follow the list's order without gaps, each publication is
        appended and delivered as ``publish`` would (MAXLEN, TTLs), and with Redis the whole
        list is one round trip. Returns the offsets in order. Raises HubUnavailable for the
        whole list (nothing published, or not known to be)."""
    async def send_control(self, data: dict) -> None: ...
    async def join(self, channel: str) -> None:
        """Returns once this process receives ``channel`` (HubUnavailable if it cannot);
        calls ``handler.on_joined`` the first time."""
    def leave_soon(self, channel: str) -> None:
        """Leave ``channel`` shortly unless it is wanted again meanwhile (``on_left``)."""
    async def refresh(self) -> None:
        """Renew memberships that expire (hourly)."""
    async def probe(self) -> bool:
        """Delivery to this process works (a marker went round)."""
    async def reconnect(self) -> None:
        """Start delivery afresh after a failed probe; every channel must be joined again."""
    def per_channel_sizes(self) -> dict[str, int]:
        """Entries per per-channel container (tests audit that leaving frees them)."""
    def leaves_pending(self) -> bool: ...
