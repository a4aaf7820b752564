"""A lighter idle socket on the daphne fast path: what an open autobahn protocol (daphne's
``WebSocketProtocol`` under ``hub.daphne.server.HubWebSocketProtocol``) no longer needs.

Measured per idle connection (docs/benchmarks.md, tracemalloc): the spent HTTP channel of
the upgrade ~3 KB, autobahn's empty send-queue deque ~0.7 KB, its 128-slot instance dict
~1.6 KB. Every internal used here is a row of ``hub.daphne.checks.NEEDS``.
"""

from __future__ import annotations

from collections import deque

from twisted.web.http import HTTPChannel

# autobahn's parsed copies of the opening handshake, and daphne's decoded headers, query
# string (a ``?token=``), server address and root path, read only in onConnect to build the
# scope (whose own references the hub lets go once the socket is admitted:
# hub.socket.admission.admitted_scope; ~0.9 KB); nothing reads them once open
_HANDSHAKE_ATTRS = ("http_request_data", "http_headers", "http_status_line", "http_request_uri",
                    "http_request_params", "http_response_data", "websocket_protocols",
                    "websocket_extensions", "clean_headers", "_raw_query_string", "server_addr",
                    "root_path")


class SendQueue:
    """autobahn's ``send_queue`` (a ``deque``, ~0.7 KB per socket) as used by autobahn
    (``append``, ``popleft``, ``len``; rows with fingerprints in ``checks.NEEDS``) and by
    ``DaphneWriter`` (truth): the deque exists only while something is queued. autobahn
    queues only synchronous or chopped sends, which the hub never asks for."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: deque | None = None

    def append(self, item) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)

    def popleft(self):
        items = self._items
        if items is None:
            raise IndexError("pop from an empty queue")
        item = items.popleft()
        if not items:
            self._items = None
        return item

    def __len__(self) -> int:
        return 0 if self._items is None else len(self._items)


def release_upgrade_channel(transport) -> bool:
    """Unregister twisted.web's ``HTTPChannel`` that daphne's WebSocket upgrade leaves as
    the transport's producer, when it is spent: its request is "being handled" forever
    (``_handlingRequest``, so its ``pauseProducing``/``resumeProducing`` do nothing), its
    timeout is off and it has no request producer. It then only keeps the upgrade request,
    its headers and read buffer alive (~3 KB per socket). Any other producer stays.

    The channel and its request refer to each other (``requests`` / ``channel``): a cycle,
    which only the cyclic collector frees, and that one runs rarely here (``tune_gc``) and
    finds these in its older generations. Emptying the spent channel's ``requests`` (nothing
    calls it again: it is neither the transport's protocol nor its producer now) lets
    reference counting free both at once (~0.7 KB per socket, tracemalloc)."""
    producer = getattr(transport, "producer", None)
    if (type(producer) is not HTTPChannel or getattr(producer, "_handlingRequest", None) is not True
            or getattr(producer, "_requestProducer", True) is not None
            or getattr(producer, "timeOut", True) is not None):
        return False
    transport.unregisterProducer()
    requests = getattr(producer, "requests", None)
    if type(requests) is list:
        requests.clear()
    return True


def lighten(protocol) -> None:
    """What an open autobahn protocol no longer needs: the parsed handshake, an empty send
    queue's deque, the spent HTTP channel of the upgrade; and its flags shared with its
    class (``share_flags``)."""
    pop = protocol.__dict__.pop
    for name in _HANDSHAKE_ATTRS:
        pop(name, None)
    if type(protocol.send_queue) is deque and not protocol.send_queue:
        protocol.send_queue = SendQueue()
    release_upgrade_channel(protocol.transport)
    share_flags(protocol)


# Read with hasattr, or deleted: an instance value must stay one (autobahn's setTrackTimings
# asks hasattr(self, "trackTimings"); daphne asks hasattr and deletes the other two).
_OWN = frozenset({"trackTimings", "application_queue", "handshake_deferred"})
_FLAG_TYPES = (bool, type(None), int)
COMPACT_KEYS = 42  # what a 64-slot dict holds; one more key and it takes 128 slots (~1.5 KB)


def share_flags(protocol) -> None:
    """autobahn sets ~50 attributes per socket in ``_connectionMade``, most of them flags
    (False, None, 0) that an idle socket never changes; that many keys take a 128-slot
    ``__dict__`` (~1.6 KB). A flag whose value is the very object its class holds under that
    name is dropped from the instance (the class is ``HubWebSocketFactory``'s configured
    subclass; the first socket to open gives it the values it lacks), then the dict is
    rebuilt at its new size. Reads find the class value, writes go to the instance as
    before; only ``hasattr`` on a never-set name and ``del`` could tell, and the names read
    that way (``_OWN``) are kept."""
    cls = type(protocol)
    state = protocol.__dict__
    before = len(state)
    for name, value in list(state.items()):
        if type(value) not in _FLAG_TYPES or name in _OWN or name.startswith("__"):
            continue
        if not hasattr(cls, name):
            setattr(cls, name, value)
        if getattr(cls, name) is value:
            del state[name]
    if len(state) < before:
        protocol.__dict__ = dict(state)
