"""ASGI routing: by protocol (``ProtocolRouter``), then the WebSocket routes /ws/, /ws,
/ws/<client_id>, /ws/<client_id>/ and / (PROTOCOL.md §1, ``HubRouter``).

Both routers are plain callables that hand back the next application's coroutine instead of
awaiting it: an awaiting layer keeps its coroutine frame alive for the socket's whole life
(~250-450 B per idle connection each, tracemalloc; docs/benchmarks.md). The origin check and
the handshake credentials are not layers either: ``HubConsumer.run`` asks them first.
"""

from __future__ import annotations

import re

from asgiref.sync import markcoroutinefunction

# The routes, as Channels' URLRouter matched them (after root_path and the leading "/").
ROUTE = re.compile(r"ws/?|ws/(?P<client_id>[^/]+)/?|")


async def _raise(exc: Exception) -> None:
    raise exc  # inside the application task, as an awaiting router would: the server answers


class ProtocolRouter:
    """Channels' ``ProtocolTypeRouter`` (same mapping, same ``ValueError`` for a scope type
    it does not know, raised when awaited), without a frame of its own per connection."""

    __slots__ = ("apps",)

    def __init__(self, apps: dict) -> None:
        self.apps = apps

    @markcoroutinefunction  # ASGI 3 to servers that inspect (uvicorn), though not async
    def __call__(self, scope, receive, send):
        app = self.apps.get(scope["type"])
        if app is None:
            return _raise(ValueError(f"No application configured for scope type {scope['type']!r}"))
        return app(scope, receive, send)


class HubRouter:
    """The hub's routes to ``HubConsumer``, with the requested client id (or None) passed to
    it; returns the consumer's ``run()`` coroutine. Why not Channels' ``URLRouter``: it
    copies the scope per socket (a dict, plus ``url_route`` and its kwargs), and the copy
    lives as long as the socket, ~1 KB per idle connection (docs/benchmarks.md). Matching is
    URLRouter's: ``root_path`` stripped when present (the path must start with it), leading
    slashes dropped, the whole rest matched; no route raises ``ValueError`` when awaited, as
    URLRouter does (the server closes the socket)."""

    __slots__ = ("consumer",)

    def __init__(self, consumer) -> None:
        self.consumer = consumer

    @markcoroutinefunction
    def __call__(self, scope, receive, send):
        path = scope.get("path")
        if path is None:
            return _raise(ValueError("No 'path' key in connection scope, cannot route URLs"))
        root_path = scope.get("root_path", "")
        if root_path:
            if not path.startswith(root_path):
                return _raise(ValueError(f"No route found for path {path!r}."))
            path = path[len(root_path):]
        match = ROUTE.fullmatch(path.lstrip("/"))
        if match is None:
            return _raise(ValueError(f"No route found for path {path!r}."))
        return self.consumer(scope, receive, send, match["client_id"]).run()


def build_websocket_application():
    """The WebSocket application: origin check, handshake credentials, admission and the
    protocol all happen in ``HubConsumer.run`` (in that order)."""
    from hub.socket.consumers import HubConsumer
    from hub.socket.origin import warn_if_any_origin

    warn_if_any_origin()
    return HubRouter(HubConsumer)
