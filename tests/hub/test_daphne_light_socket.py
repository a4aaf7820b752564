"""The fast path's lighter idle socket (``hub.daphne.server.lighten``), over REAL autobahn and
twisted.web objects on Twisted's in-memory transport: autobahn's send queue allocated only
while something is queued (order kept, and the writer still sees it), and the HTTP channel
daphne upgrades from let go once it is spent (and only then)."""

from __future__ import annotations

import gc
import weakref

import daphne.server  # noqa: F401, I001  first: it installs Twisted's asyncio reactor
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet.testing import StringTransport
from twisted.web.http import HTTPChannel, Request

from hub.daphne.server import SendQueue, lighten, release_upgrade_channel
from hub.daphne.writer import DaphneWriter
from hub.transport import Payload

HANDSHAKE = (b"GET /ws/ HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def open_protocol(transport) -> WebSocketServerProtocol:
    f = WebSocketServerFactory()
    f.protocol = WebSocketServerProtocol
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
