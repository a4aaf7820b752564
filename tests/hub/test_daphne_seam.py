"""The daphne seam (``hub/daphne/``) without a daphne process: the writer over a REAL autobahn
server protocol, on Twisted's in-memory transport (``StringTransport``) and on a real Twisted
TCP transport over a socket pair with a reactor that never runs (``MemoryReactor``); the
start-up checks; the choice ``make_writer`` makes. A dependency upgrade that changes what the
writer relies on fails here, not only in an e2e run."""

from __future__ import annotations

import functools
import logging
import socket
import struct

import daphne.server  # noqa: I001  first: it installs Twisted's asyncio reactor
import pytest
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.protocol import WebSocketProtocol as AutobahnProtocol
from twisted.internet import tcp
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactor, StringTransport

import hub.daphne
from hub.daphne import checks
from hub.daphne.writer import DaphneWriter
from hub.engine.transport import AsgiWriter, Payload, PayloadBatch, make_writer

HANDSHAKE = (b"GET /ws/ HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


@pytest.fixture(autouse=True)
def fresh_decision(monkeypatch):
    monkeypatch.delenv(hub.daphne.ENV, raising=False)
    hub.daphne.reset()
    yield
    hub.daphne.reset()


def factory() -> WebSocketServerFactory:
    f = WebSocketServerFactory()
    f.protocol = WebSocketServerProtocol
    f.setProtocolOptions(openHandshakeTimeout=0, autoPingInterval=0)
    return f


def open_protocol(transport, f=None) -> WebSocketServerProtocol:
    """A real autobahn protocol past its opening handshake on ``transport``."""
    protocol = (f or factory()).buildProtocol(None)
    protocol.makeConnection(transport)
    protocol.dataReceived(HANDSHAKE)
    assert protocol.state == protocol.STATE_OPEN
    return protocol


def frames(data: bytes) -> list[tuple[int, bytes]]:
    """Server-to-client WebSocket frames (unmasked) as (opcode, payload); all bytes used."""
    out, i = [], 0
    while i < len(data):
        b0, b1 = data[i], data[i + 1]
        assert b0 & 0x80 and not b1 & 0x80  # FIN, unmasked
        n, i = b1 & 0x7F, i + 2
        if n == 126:
            n, i = struct.unpack("!H", data[i:i + 2])[0], i + 2
        elif n == 127:
            n, i = struct.unpack("!Q", data[i:i + 8])[0], i + 8
        out.append((b0 & 0x0F, data[i:i + n]))
        i += n
    assert i == len(data)
    return out


def after_handshake(transport: StringTransport) -> bytes:
    value = transport.value()
    return value[value.index(b"\r\n\r\n") + 4:]


def test_the_installed_versions_pass_every_check():
    assert checks.missing() == []
    assert hub.daphne.fast_path() is True


def test_prepared_frames_are_framed_once_and_decode_as_websocket_text():
    f = factory()
    calls = []
    prepare = f.prepareMessage
    f.prepareMessage = lambda payload, binary: calls.append(payload) or prepare(payload, binary)
    one, two = StringTransport(), StringTransport()
    writers = [DaphneWriter(open_protocol(t, f), 1 << 20, lambda: None) for t in (one, two)]
    payload = Payload('{"type":"message","data":"é"}')
    batch = PayloadBatch([Payload('{"n":1}'), Payload('{"n":2}')])
    for writer in writers:
        assert writer.write_payload(payload) and writer.write_payload(batch)
    assert calls == [payload.encoded, b'{"n":1}', b'{"n":2}']  # once per process, not per socket
    for transport in (one, two):
        assert frames(after_handshake(transport)) == [
            (0x1, payload.encoded), (0x1, b'{"n":1}'), (0x1, b'{"n":2}')]
    assert batch.frame == batch.items[0].frame + batch.items[1].frame


@pytest.mark.parametrize("code", [1009, 1013, 4001, 4010])
def test_close_codes_go_out_as_close_frames(code):
    transport = StringTransport()
    writer = DaphneWriter(open_protocol(transport), 1 << 20, lambda: None)
    writer.close(code, "why")
    assert frames(after_handshake(transport)) == [(0x8, struct.pack("!H", code) + b"why")]
    assert writer.write_payload(Payload("late")) is False  # closing: nothing more goes out


def test_queued_bytes_are_counted_and_a_slow_consumer_overflows():
    """A real Twisted TCP transport whose peer never reads: the direct send fills the kernel
    buffers, the rest is queued in Twisted, and past the limit the overflow callback fires."""
    ours, peer = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ours.setblocking(False)
    transport = PairConnection(ours, None, reactor=MemoryReactor())
    transport.connected = 1  # what tcp.Server does for an accepted socket
    protocol = open_protocol(transport)
    transport.doWrite()  # the handshake answer, written out by hand (no reactor turns)
    assert transport._tempDataLen == 0 and len(transport.dataBuffer) == transport.offset
    peer.recv(4096)
    limit, overflows = 64 * 1024, []
    writer = DaphneWriter(protocol, limit, lambda: overflows.append(writer.queued_bytes()))
    assert writer.queued_bytes() == 0
    chunk = Payload("x" * 10_000)
    writes = 0
    while not overflows:
        assert writer.write_payload(chunk)
        writes += 1
        assert writes < 1000
    assert writer._sock_send == ours.send  # the direct path: plain TCP, straight to the socket
    queued = writer.queued_bytes()
    assert queued == len(transport.dataBuffer) - transport.offset + transport._tempDataLen
    assert overflows == [queued] and queued > limit
    writer.close(4010, "slow consumer")
    # everything written so far arrives, in order, once the reader reads again
    received = b""
    peer.setblocking(False)
    while True:
        transport.doWrite()
        try:
            data = peer.recv(1 << 20)
        except BlockingIOError:
            data = b""
        received += data
        if not data and writer.queued_bytes() == 0:
            break
    got = frames(received[received.index(b"\r\n\r\n") + 4:] if b"HTTP" in received[:8] else received)
    assert got[:-1] == [(0x1, chunk.encoded)] * writes
    assert got[-1] == (0x8, struct.pack("!H", 4010) + b"slow consumer")
    ours.close()
    peer.close()


class PairConnection(tcp.Connection):
    """Twisted's TCP transport (all of its buffering) over one end of a socket pair."""

    def getPeer(self):
        return IPv4Address("TCP", "127.0.0.1", 50000)

    getHost = getPeer


def daphne_send(protocol) -> functools.partial:
    """What daphne hands the application as ``send``."""
    server = daphne.server.Server(application=None, endpoints=["tcp:port=0"])  # never run
    return functools.partial(server.handle_reply, protocol)


def test_make_writer_picks_the_daphne_writer_when_every_check_passes():
    writer = make_writer(daphne_send(open_protocol(StringTransport())), 1024, lambda: None)
    assert isinstance(writer, DaphneWriter)


def test_a_missing_internal_is_reported_warned_once_and_falls_back(monkeypatch, caplog):
    monkeypatch.delattr(AutobahnProtocol, "sendPreparedMessage")
    assert checks.missing() == ["autobahn.Protocol.sendPreparedMessage"]
    send = daphne_send(open_protocol(StringTransport()))
    with caplog.at_level(logging.INFO, logger="hub.daphne"):
        writers = [make_writer(send, 1024, lambda: None) for _ in range(3)]
    assert all(isinstance(w, AsgiWriter) for w in writers)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "sendPreparedMessage" in warnings[0].getMessage()
    assert hub.daphne.missing() == ["autobahn.Protocol.sendPreparedMessage"]


def test_a_changed_copied_function_counts_as_missing(monkeypatch):
    def create_application(self, protocol, scope):  # an "upgraded" daphne
        return None

    monkeypatch.setattr(daphne.server.Server, "create_application", create_application)
    assert checks.missing() == ["daphne.Server.create_application (source changed)"]


def test_forced_off_uses_the_asgi_writer_without_running_the_checks(monkeypatch, caplog):
    monkeypatch.setenv(hub.daphne.ENV, "off")
    monkeypatch.setattr(checks, "missing", lambda: pytest.fail("checks ran"))
    send = daphne_send(open_protocol(StringTransport()))
    with caplog.at_level(logging.INFO, logger="hub.daphne"):
        assert isinstance(make_writer(send, 1024, lambda: None), AsgiWriter)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_the_asgi_writer_counts_utf8_bytes_and_drains_them():
    sent, overflows = [], []

    async def send(message):
        sent.append(message)

    writer = AsgiWriter(send, 10, lambda: overflows.append(1))
    assert writer.write_text("éé") and writer.queued_bytes() == 4
    assert writer.write_payload(Payload("ééé")) and writer.queued_bytes() == 10
    assert overflows == []
    writer.write_text("x")
    assert overflows == [1]
    while writer._task is not None:
        await writer._task
    assert writer.queued_bytes() == 0
    assert [m["text"] for m in sent] == ["éé", "ééé", "x"]


def test_post_bodies_are_not_parsed_as_forms_and_reach_the_application_whole():
    """HubWebRequest (the fast path's daphne request): Twisted's form parsing of a POST body
    (its Content-Type through the ``email`` package, a urlencoded body through parse_qs) is
    off; the body daphne reads is untouched. Fails if Twisted stops reading the flag."""
    from twisted.web import http

    from hub.daphne.server import HubWebRequest

    seen = []

    class Recorded(HubWebRequest):
        def process(self):  # daphne's own would start the application
            seen.append((self.args, self.content.read(), self._parsePOSTFormSubmission))

    server = type("Server", (), {"protocol_connected": lambda self, request: None})()
    channel = http.HTTPChannel()
    channel.requestFactory = Recorded
    channel.factory = type("Factory", (), {"server": server})()
    channel.makeConnection(StringTransport())
    body = b"a=1&b=2"
    channel.dataReceived(b"POST /api/x?q=1 HTTP/1.1\r\nHost: hub\r\n"
                         b"Content-Type: application/x-www-form-urlencoded\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    assert seen == [({b"q": [b"1"]}, body, False)]
