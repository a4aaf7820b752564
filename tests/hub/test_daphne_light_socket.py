"""The fast path's lighter idle socket (``hub.daphne.server.lighten``), over REAL autobahn and
twisted.web objects on Twisted's in-memory transport: autobahn's send queue allocated only
while something is queued (order kept, and the writer still sees it), and the HTTP channel
daphne upgrades from let go once it is spent (and only then)."""

from __future__ import annotations

import gc
import struct
import sys
import weakref

import daphne.server  # noqa: F401, I001  first: it installs Twisted's asyncio reactor
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet.testing import StringTransport
from twisted.web.http import HTTPChannel, Request

from hub.daphne.light import SendQueue, lighten, release_upgrade_channel, share_flags
from hub.daphne.writer import DaphneWriter
from hub.engine.transport import Payload

HANDSHAKE = (b"GET /ws/ HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def open_protocol(transport, cls=None) -> WebSocketServerProtocol:
    """Of a class of its own by default, as ``HubWebSocketFactory`` configures one (flags
    shared with the class must not leak into autobahn's)."""
    f = WebSocketServerFactory()
    f.protocol = cls or type("Configured", (WebSocketServerProtocol,), {})
    f.setProtocolOptions(openHandshakeTimeout=0, autoPingInterval=0)
    protocol = f.buildProtocol(None)
    protocol.makeConnection(transport)
    protocol.dataReceived(HANDSHAKE)
    assert protocol.state == protocol.STATE_OPEN
    return protocol


class Upgrade(Request):
    """What daphne's request does with a WebSocket upgrade: never finishes it."""

    def process(self) -> None:
        pass


def upgraded_channel(transport: StringTransport) -> HTTPChannel:
    """A real HTTPChannel that received the upgrade request, registered (by itself) as the
    transport's producer, as daphne leaves it."""
    channel = HTTPChannel()
    channel.requestFactory = Upgrade
    channel.makeConnection(transport)
    channel.dataReceived(HANDSHAKE)
    assert transport.producer is channel
    return channel


def after_handshake(transport: StringTransport) -> bytes:
    value = transport.value()
    return value[value.index(b"\r\n\r\n") + 4:]


def test_the_send_queue_exists_only_while_autobahn_queues_and_keeps_the_order():
    transport = StringTransport()
    protocol = open_protocol(transport)
    lighten(protocol)
    queue = protocol.send_queue
    assert isinstance(queue, SendQueue) and queue._items is None and not queue
    protocol.sendData(b"abcdef", chopsize=2)  # autobahn queues chopped sends
    assert after_handshake(transport) == b"ab" and len(queue) == 2 and queue
    writer = DaphneWriter(protocol, 1 << 20, lambda: None)
    assert writer.write_payload(Payload("x"))  # behind the queue, not before it
    while queue:
        protocol._send()
    protocol._send()  # empty: autobahn stops its trigger
    assert queue._items is None and protocol.triggered is False
    assert after_handshake(transport) == b"abcdef\x81\x01x"


def test_a_spent_upgrade_channel_is_let_go_and_freed():
    transport = StringTransport()
    channel = upgraded_channel(transport)
    protocol = open_protocol(transport)
    ref = weakref.ref(channel)
    del channel
    lighten(protocol)
    assert transport.producer is None
    gc.collect()
    assert ref() is None  # the request, its headers and buffers went with it


def test_a_channel_that_still_serves_or_times_out_stays():
    idle = StringTransport()
    HTTPChannel().makeConnection(idle)  # no request yet: it may still pause reading
    assert release_upgrade_channel(idle) is False and idle.producer is not None
    timed = StringTransport()
    channel = upgraded_channel(timed)
    channel.timeOut = 60
    assert release_upgrade_channel(timed) is False and timed.producer is channel
    other = StringTransport()
    other.registerProducer(object(), True)
    assert release_upgrade_channel(other) is False and other.producer is not None


def test_flags_are_shared_with_the_class_and_the_socket_still_works():
    cls = type("Configured", (WebSocketServerProtocol,), {})
    first, second = StringTransport(), StringTransport()
    one, two = open_protocol(first, cls), open_protocol(second, cls)
    size, keys = sys.getsizeof(two.__dict__), len(two.__dict__)
    lighten(one)
    lighten(two)
    assert len(two.__dict__) < keys and sys.getsizeof(two.__dict__) < size
    assert "wasClean" not in two.__dict__ and cls.wasClean is False and two.wasClean is False
    assert "trackTimings" in two.__dict__  # read with hasattr by autobahn: stays its own
    assert WebSocketServerProtocol.__dict__.get("wasClean") is None  # autobahn's class untouched
    writer = DaphneWriter(two, 1 << 20, lambda: None)
    assert writer.write_payload(Payload("hi"))
    writer.close(4010, "bye")  # sets closedByMe and friends on the instance only
    assert two.closedByMe is True and cls.closedByMe is False and one.closedByMe is False
    body = after_handshake(second)
    assert body.startswith(b"\x81\x02hi") and body[2 + 2:][2:4] == struct.pack("!H", 4010)


def masked(payload: bytes) -> bytes:
    """A client text frame (masked, RFC 6455 §5.3)."""
    mask = b"\x01\x02\x03\x04"
    return bytes((0x81, 0x80 | len(payload))) + mask + bytes(
        b ^ mask[i % 4] for i, b in enumerate(payload))


def test_a_client_frame_regrows_the_dict_and_sharing_again_shrinks_it():
    """What ``HubWebSocketProtocol.onMessage`` does past ``COMPACT_KEYS``."""
    got = []
    cls = type("Configured", (WebSocketServerProtocol,), {"onMessage": lambda self, p, b: got.append(p)})
    protocol = open_protocol(StringTransport(), cls)
    lighten(protocol)
    keys = len(protocol.__dict__)
    protocol.dataReceived(masked(b'{"type":"ping"}'))
    assert got == [b'{"type":"ping"}'] and len(protocol.__dict__) > keys
    share_flags(protocol)
    assert len(protocol.__dict__) <= keys + 2  # the per-message flags went back to the class
    protocol.dataReceived(masked(b'{"type":"pong"}'))
    assert got[-1] == b'{"type":"pong"}'  # and the next frame still parses


def test_daphnes_handshake_data_is_dropped_once_open_and_read_as_empty():
    """daphne keeps the handshake's headers (cookies, Authorization), query string (a
    ``?token=``), server address and root path for the socket's life, though it reads them
    only in ``onConnect``; the scope's references are let go by the consumer
    (``admitted_scope``), these by ``lighten``."""
    from hub.daphne.server import HubWebSocketProtocol

    protocol = open_protocol(StringTransport())
    protocol.clean_headers = [(b"cookie", b"sessionid=secret"), (b"host", b"hub")]
    protocol._raw_query_string, protocol.server_addr = b"token=secret", ["127.0.0.1", 8000]
    protocol.root_path = "/hub"
    lighten(protocol)
    for name, later in (("clean_headers", ()), ("_raw_query_string", b""), ("server_addr", None),
                        ("root_path", "")):
        assert name not in protocol.__dict__
        assert getattr(HubWebSocketProtocol, name) == later  # what a later read would find


def test_a_spent_channel_and_its_request_are_freed_without_the_cyclic_collector():
    """Channel and request refer to each other; the hub's server runs the cyclic collector
    rarely (``tune_gc``), so the pair must go by reference counting alone."""
    transport = StringTransport()
    channel = upgraded_channel(transport)
    request = weakref.ref(channel.requests[0])
    protocol = open_protocol(transport)
    ref = weakref.ref(channel)
    del channel
    gc.disable()
    try:
        assert release_upgrade_channel(protocol.transport)
        assert ref() is None and request() is None
    finally:
        gc.enable()
