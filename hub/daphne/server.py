"""Run the hub under daphne: ``python -m hub.server -b 127.0.0.1 -p 8000`` (``hub/server.py``
is a shim onto ``main`` here).

A thin wrapper over daphne's own CLI that (1) validates settings before binding, (2) makes
daphne enforce ``HUB_MAX_MESSAGE_SIZE`` (close 1009, not a TCP drop), and (3) redacts
credentials from daphne's access log, which prints HTTP query strings (``?token=...``)
verbatim. Any daphne option can be passed through.

On the fast path (``hub.daphne.fast_path()``) it also runs ``FastServer``: a lighter
per-socket protocol (``HubWebSocketFactory``, swapped into ``daphne.server`` before
``Server.run`` builds it) and a lighter receive queue (``Inbox``). In fallback mode it runs
``HubServer``: daphne's own classes, nothing swapped.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import re
import sys
from collections import deque
from functools import partial
from typing import cast

import daphne.server  # isort:skip  first: it installs Twisted's asyncio reactor
import daphne.http_protocol
from autobahn.twisted.websocket import WebSocketServerProtocol
from daphne.cli import CommandLineInterface
from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from twisted.internet import reactor

from hub.daphne import fast_path
from hub.daphne.light import COMPACT_KEYS, lighten, share_flags
from hub.ops.logging_filters import RedactingStream

logger = logging.getLogger("hub.daphne")


class _RequestPath:
    """What daphne's protocol still reads from the handshake request once open (log lines)."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path


class HubWebSocketProtocol(WebSocketProtocol):
    """daphne's protocol, lighter per socket. autobahn copies ~30 configuration attributes
    from the factory into every protocol's ``__dict__`` and ``pformat``s them for a debug
    line on every connect (even with debug off); here they are class attributes of a
    subclass built once per configuration (``HubWebSocketFactory``), so ``CONFIG_ATTRS`` is
    empty. Once open, the handshake request and autobahn's parsed copies of it are dropped,
    the spent HTTP channel of the upgrade is let go (``release_upgrade_channel``) and the
    send queue is allocated only when used (``SendQueue``)."""

    CONFIG_ATTRS = ()
    # daphne's handshake data, read only in onConnect (checks.NEEDS) and dropped once open
    # (``lighten``): should anything read them later, it finds these.
    clean_headers: tuple = ()
    _raw_query_string = b""
    server_addr = None
    root_path = ""

    def onOpen(self):
        super().onOpen()
        self.request = _RequestPath(self.request.path)
        if getattr(self.__dict__.get("application_deferred"), "called", False):
            del self.application_deferred  # fired: daphne uses it only in onConnect
        lighten(self)

    def onMessage(self, payload, isBinary):
        super().onMessage(payload, isBinary)
        # autobahn sets ~11 per-frame attributes, which regrow the compacted dict
        if len(self.__dict__) > COMPACT_KEYS:
            share_flags(self)

    def onPong(self, payload):
        super().onPong(payload)
        # the same after a pong (to daphne's auto-ping, every --ping-interval on every socket)
        if len(self.__dict__) > COMPACT_KEYS:
            share_flags(self)


class HubWebSocketFactory(WebSocketFactory):
    protocol = HubWebSocketProtocol

    def _configure_protocol(self) -> None:
        attrs = {name: getattr(self, name) for name in WebSocketServerProtocol.CONFIG_ATTRS}
        for name, value in attrs.items():  # e.g. perMessageCompressionAccept: a callable
            if callable(value):
                attrs[name] = staticmethod(value)
        configured = type("ConfiguredHubWebSocketProtocol", (HubWebSocketProtocol,), attrs)
        self.protocol = cast("type[HubWebSocketProtocol]", configured)  # a subclass, built above

    def resetProtocolOptions(self):
        super().resetProtocolOptions()
        self._configure_protocol()

    def setProtocolOptions(self, *args, **kwargs):
        super().setProtocolOptions(*args, **kwargs)
        self._configure_protocol()


class HubWebRequest(daphne.http_protocol.WebRequest):
    """daphne's HTTP request without Twisted's form parsing of POST bodies. daphne hands the
    raw body to the application and never reads ``request.args`` from it, yet Twisted
    parsed every POST's Content-Type with the ``email`` package (and a urlencoded body with
    ``parse_qs``): 10-20 % of the CPU of a small ``POST /api/broadcast`` (py-spy). Should
    Twisted rename the flag, the setting is simply ignored (form parsing again: slower,
    not wrong); tests/hub/test_daphne_seam.py notices."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._parsePOSTFormSubmission = False


class Inbox:
    """An application's receive queue: what daphne uses of ``asyncio.Queue`` (``put_nowait``,
    ``get``), without its three deques and an Event (~2.4 KB per socket). One reader."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque | None = None
        self._waiter: asyncio.Future | None = None

    def put_nowait(self, item) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self):
        while not self._items:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        items = self._items
        item = items.popleft()
        if not items:
            self._items = None  # an idle socket keeps no deque block (~0.7 KB)
        return item


class HubServer(Server):
    """daphne's server with credentials redacted from its access log and oversized frames
    closed with 1009 (autobahn drops the TCP connection by default). Both paths use it."""

    def __init__(self, *args, **kwargs):
        access_log = kwargs.get("action_logger")
        if access_log is not None:
            if hasattr(access_log, "stream"):
                access_log.stream = RedactingStream(access_log.stream)
            else:  # an upgrade moved it: no access log rather than one that leaks tokens
                logger.warning("daphne's access log has no stream to redact: access log off")
                kwargs["action_logger"] = None
        super().__init__(*args, **kwargs)

    def run(self):
        reactor.callWhenRunning(self._close_on_oversized_frames)  # after run builds ws_factory
        super().run()

    def _close_on_oversized_frames(self) -> None:
        """A factory option (public autobahn API) that every protocol copies when it
        connects: a frame over ``--websocket-max-message-size`` gets close 1009."""
        factory = getattr(self, "ws_factory", None)
        if factory is None:
            logger.warning("daphne built no ws_factory: oversized frames drop the connection")
            return
        # autobahn's setProtocolOptions resets allowNullOrigin to its False default whenever
        # it is called: keep daphne's True, so an Origin "null" reaches the hub's own check
        # (HTTP 403), not autobahn's (400).
        factory.setProtocolOptions(failByDrop=False, allowNullOrigin=factory.allowNullOrigin)


class FastServer(HubServer):
    """The fast path: the lighter protocol and receive queue (checked by ``hub.daphne.checks``)."""

    def run(self):
        daphne.server.WebSocketFactory = HubWebSocketFactory  # built inside Server.run
        daphne.http_protocol.WebRequest = HubWebRequest  # HTTPFactory.buildProtocol's
        super().run()

    def create_application(self, protocol, scope):
        """daphne's ``create_application`` with ``Inbox`` instead of ``asyncio.Queue`` (its
        source is fingerprinted in ``checks.NEEDS``: a change upstream turns this off)."""
        assert "application_instance" not in self.connections[protocol]
        input_queue = Inbox()
        scope.setdefault("asgi", {"version": "3.0"})
        application_instance = self.application(
            scope=scope, receive=input_queue.get, send=partial(self.handle_reply, protocol))
        if protocol not in self.connections:
            return None
        self.connections[protocol]["application_instance"] = asyncio.ensure_future(
            application_instance, loop=asyncio.get_event_loop())
        return input_queue


class HubCommandLineInterface(CommandLineInterface):
    server_class: type[Server] = HubServer

    def __init__(self, fast: bool) -> None:
        super().__init__()
        self.server_class = FastServer if fast else HubServer


LISTEN_BACKLOG = 1024  # Twisted's default of 50 refuses connects in a reconnect storm


def with_backlog(args: list[str]) -> list[str]:
    """``-b HOST -p PORT`` as a Twisted endpoint with a deeper listen backlog."""
    if any(a in ("-e", "--endpoint", "-u", "--unix-socket", "--fd") for a in args):
        return args
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-b", "--bind", default=None)
    parser.add_argument("-p", "--port", type=int, default=None)
    known, rest = parser.parse_known_args(args)
    if known.port is None and known.bind is None:
        return args
    interface = (known.bind or "127.0.0.1").strip("[]").replace(":", "\\:")
    endpoint = f"tcp:port={known.port or 8000}:interface={interface}:backlog={LISTEN_BACKLOG}"
    return ["--endpoint", endpoint, *rest]


def tune_gc() -> None:
    """Objects from start-up (Django, apps, settings) never become garbage: freeze them so
    the collector stops walking them, and collect the young generation less often. Measured
    with py-spy at 5,000 subscribers: the cyclic collector took 18 % of the process."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_project.settings")
    import django
    from django.conf import settings

    django.setup()
    args = with_backlog(list(sys.argv[1:] if argv is None else argv))
    size = str(settings.HUB["MAX_MESSAGE_SIZE"])
    if "--websocket-max-message-size" not in args:
        args += ["--websocket-max-message-size", size, "--websocket-max-frame-size", size]
    if not any(re.fullmatch(r"[\w.]+:[\w.]+", a) for a in args):
        args.append("realtime_project.asgi:application")
    import realtime_project.asgi  # noqa: F401  import the application before freezing

    fast = fast_path()  # after django.setup(): its one warning goes through LOGGING
    tune_gc()
    HubCommandLineInterface(fast).run(args)


if __name__ == "__main__":
    main()
