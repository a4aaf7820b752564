"""Every daphne, autobahn and Twisted internal the seam relies on, in ONE table (``NEEDS``).

``missing()`` builds one probe object of each kind (a Twisted TCP transport over an unbound
socket, an autobahn server protocol connected to Twisted's in-memory transport, daphne's
classes) and returns the rows it cannot find, as ``"<probe>.<name>"`` strings. An empty list
means the fast path (``hub.daphne.writer.DaphneWriter`` and ``hub.daphne.server.FastServer``)
may be used; anything else and ``hub.daphne.fast_path`` falls back to the stock ASGI path.

Rows marked ``fallback=True`` are used by the fallback path too (one call each, guarded where
it is made): close codes daphne's stock close refuses, frame-size closes, log redaction.

A row with a ``sha1`` compares a fingerprint of the function's source: the seam replaces
that function with a copy (``FastServer.create_application``), so any change upstream means
the copy may be stale.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import socket
import textwrap
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Need:
    probe: str   # a key of ``_PROBES``
    name: str    # attribute or method the seam reads or calls
    why: str     # what breaks without it
    fallback: bool = False  # the fallback path uses it too
    sha1: str = ""  # fingerprint of the function's dedented source (first 12 hex digits)


TCP, PROTO, FACTORY, PREPARED = "twisted.tcp.Connection", "autobahn.Protocol", \
    "autobahn.Factory", "autobahn.PreparedMessage"
HTTP = "twisted.web.HTTPChannel"
D_MOD, D_SERVER, D_PROTO, D_FACTORY, D_LOG, D_CLI = "daphne.server", "daphne.Server", \
    "daphne.WebSocketProtocol", "daphne.WebSocketFactory", "daphne.AccessLogGenerator", \
    "daphne.CommandLineInterface"

NEEDS: tuple[Need, ...] = (
    # Twisted's TCP transport: slow-consumer accounting and the direct send
    Need(TCP, "dataBuffer", "queued bytes = len(dataBuffer) - offset + _tempDataLen"),
    Need(TCP, "offset", "queued bytes (part of dataBuffer already sent)"),
    Need(TCP, "_tempDataLen", "queued bytes (writes not yet joined into dataBuffer)"),
    Need(TCP, "connected", "direct send only on a live transport"),
    Need(TCP, "disconnecting", "direct send only on a live transport"),
    Need(TCP, "_writeDisconnected", "direct send only on a live transport"),
    Need(TCP, "TLS", "direct send only on plain TCP"),
    Need(TCP, "getHandle", "the socket whose send() the direct path calls"),
    Need(TCP, "write", "the rest of a partial direct send, in order"),
    Need(TCP, "producer", "the producer already registered (chained by the fallback)",
         fallback=True),
    Need(TCP, "unregisterProducer", "the fallback registers its own producer", fallback=True),
    # autobahn's server protocol, once connected
    Need(PROTO, "state", "write only to an open socket"),
    Need(PROTO, "STATE_OPEN", "write only to an open socket"),
    Need(PROTO, "send_queue", "direct send only when autobahn queues nothing"),
    Need(PROTO, "_perMessageCompress", "direct send only without compression"),
    Need(PROTO, "transport", "the Twisted transport under the protocol"),
    Need(PROTO, "factory", "prepared frames belong to a factory"),
    Need(PROTO, "sendPreparedMessage", "the queued path for a prepared frame"),
    Need(PROTO, "sendMessage", "write_text"),
    Need(PROTO, "sendCloseFrame", "close codes 1001, 1009, 1013 (sendClose refuses them)",
         fallback=True),
    Need(PROTO, "failByDrop", "close 1009 on an oversized frame instead of a TCP drop",
         fallback=True),
    Need(PROTO, "registerProducer", "the fallback's sends wait while Twisted's buffer is full",
         fallback=True),
    Need(PROTO, "onPong", "WebSocket pongs count as liveness"),
    Need(PROTO, "CONFIG_ATTRS", "configuration as class attributes (lighter sockets)"),
    Need(PROTO, "_send", "send_queue used only through popleft/len (SendQueue)",
         sha1="e230b6a7cc21"),
    Need(PROTO, "sendData", "send_queue used only through append/len (SendQueue)",
         sha1="e80b7e84503e"),
    # twisted.web's HTTP channel daphne upgrades from: let go once spent (lighter sockets)
    Need(HTTP, "_handlingRequest", "a channel whose request never ends pauses nothing"),
    Need(HTTP, "_requestProducer", "a spent channel has no request producer"),
    Need(HTTP, "timeOut", "a spent channel has its timeout off"),
    Need(HTTP, "requests", "a spent channel's request cycle broken (freed without the GC)"),
    # autobahn's factory and its broadcast primitive
    Need(FACTORY, "prepareMessage", "a publication framed once per process"),
    Need(FACTORY, "setProtocolOptions", "options re-applied to the lighter protocol",
         fallback=True),
    Need(FACTORY, "resetProtocolOptions", "options re-applied to the lighter protocol"),
    Need(PREPARED, "payloadHybi", "the prepared frame's bytes"),
    # daphne
    Need(D_MOD, "WebSocketFactory", "the factory class Server.run builds (swapped)"),
    Need(D_SERVER, "create_application", "replaced by a copy with a lighter inbox",
         sha1="9772abf64bc5"),
    Need(D_SERVER, "handle_reply", "send = partial(handle_reply, protocol) finds the protocol",
         fallback=True, sha1="ac8a9f8858e4"),
    Need(D_SERVER, "run", "the factory swap and frame-size options happen around it",
         fallback=True),
    Need(D_PROTO, "onOpen", "handshake copies dropped once open"),
    Need(D_PROTO, "onConnect", ("application_deferred, clean_headers, _raw_query_string, server_addr, root_path: "
         "used only here (dropped once open)"),
         sha1="78275a5c2d28"),
    Need(D_PROTO, "onMessage", "the socket's dict compacted again after a client frame"),
    Need(D_PROTO, "onPong", "the socket's dict compacted again after a pong"),
    Need(D_FACTORY, "protocol", "the lighter protocol class"),
    Need(D_LOG, "stream", "the access log redacts credentials", fallback=True),
    Need(D_CLI, "server_class", "the CLI runs the hub's server class", fallback=True),
)


def _tcp_transport() -> Any:
    from twisted.internet import tcp

    sock = socket.socket()
    try:
        # A probe, never registered anywhere: neither the protocol nor the reactor is used.
        return tcp.Connection(sock, None, reactor=object())  # type: ignore[arg-type]
    finally:
        sock.close()


def _autobahn_factory() -> Any:
    from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol

    factory = WebSocketServerFactory()
    factory.protocol = WebSocketServerProtocol
    factory.setProtocolOptions(openHandshakeTimeout=0, autoPingInterval=0)
    return factory


def _autobahn_protocol() -> Any:
    from twisted.internet.testing import StringTransport

    protocol = _autobahn_factory().buildProtocol(None)
    protocol.makeConnection(StringTransport())  # autobahn sets its per-socket state here
    return protocol


def _daphne(attr: str) -> Callable[[], Any]:
    def load() -> Any:
        import daphne.access
        import daphne.cli
        import daphne.server
        import daphne.ws_protocol

        return {"module": daphne.server, "Server": daphne.server.Server,
                "WebSocketProtocol": daphne.ws_protocol.WebSocketProtocol,
                "WebSocketFactory": daphne.ws_protocol.WebSocketFactory,
                "AccessLogGenerator": daphne.access.AccessLogGenerator(io.StringIO()),
                "CommandLineInterface": daphne.cli.CommandLineInterface}[attr]
    return load


def _http_channel() -> Any:
    from twisted.web.http import HTTPChannel

    return HTTPChannel()


_PROBES: dict[str, Callable[[], Any]] = {
    TCP: _tcp_transport,
    HTTP: _http_channel,
    PROTO: _autobahn_protocol,
    FACTORY: _autobahn_factory,
    PREPARED: lambda: _autobahn_factory().prepareMessage(b"probe", False),
    D_MOD: _daphne("module"), D_SERVER: _daphne("Server"),
    D_PROTO: _daphne("WebSocketProtocol"), D_FACTORY: _daphne("WebSocketFactory"),
    D_LOG: _daphne("AccessLogGenerator"), D_CLI: _daphne("CommandLineInterface"),
}


def fingerprint(function: Any) -> str:
    return hashlib.sha1(textwrap.dedent(inspect.getsource(function)).encode()).hexdigest()[:12]


def missing(needs: tuple[Need, ...] = NEEDS) -> list[str]:
    """The rows of ``needs`` this installation does not satisfy (empty: all present).

    Must run in a process where ``daphne.server`` may be imported (it installs Twisted's
    asyncio reactor): the daphne server itself, or a test."""
    import daphne.server  # noqa: F401  first: Twisted is import-order sensitive with reactors

    probes: dict[str, Any] = {}
    failed: list[str] = []
    for need in needs:
        label = f"{need.probe}.{need.name}"
        if need.probe not in probes:
            try:
                probes[need.probe] = _PROBES[need.probe]()
            except Exception as exc:  # an upgrade that breaks the probe itself
                probes[need.probe] = exc
        target = probes[need.probe]
        if isinstance(target, Exception):
            failed.append(f"{label} (probe failed: {type(target).__name__}: {target})")
        elif not hasattr(target, need.name):
            failed.append(label)
        elif need.sha1:
            try:
                changed = fingerprint(getattr(target, need.name)) != need.sha1
            except (OSError, TypeError):  # no source to read
                changed = True
            if changed:
                failed.append(f"{label} (source changed)")
    return failed
