"""WebSocket routing: /ws/, /ws, /ws/<client_id>, /ws/<client_id>/ and / (PROTOCOL.md §1)."""

from __future__ import annotations

import re

# The routes, as Channels' URLRouter matched them (after root_path and the leading "/").
ROUTE = re.compile(r"ws/?|ws/(?P<client_id>[^/]+)/?|")


class HubRouter:
    """The hub's routes to ``HubConsumer``, with the requested client id (or None) passed to
    it. Why not Channels' ``URLRouter``: it copies the scope per socket (a dict, plus
    ``url_route`` and its kwargs), and the copy lives as long as the socket, ~1 KB per idle
    connection (docs/benchmarks.md). Matching is URLRouter's: ``root_path`` stripped when
    present (the path must start with it), leading slashes dropped, the whole rest matched;
    no route raises ``ValueError`` as URLRouter does (the server closes the socket)."""

    __slots__ = ("consumer",)

    def __init__(self, consumer) -> None:
        self.consumer = consumer

    async def __call__(self, scope, receive, send):
        path = scope.get("path")
        if path is None:
            raise ValueError("No 'path' key in connection scope, cannot route URLs")
        root_path = scope.get("root_path", "")
        if root_path:
            if not path.startswith(root_path):
                raise ValueError(f"No route found for path {path!r}.")
            path = path[len(root_path):]
        match = ROUTE.fullmatch(path.lstrip("/"))
        if match is None:
            raise ValueError(f"No route found for path {path!r}.")
        await self.consumer(scope, receive, send, match["client_id"]).run()


def build_websocket_application():
    from hub.socket.auth import HubAuthMiddleware
    from hub.socket.consumers import HubConsumer
    from hub.socket.origin import OriginCheckMiddleware

    return OriginCheckMiddleware(HubAuthMiddleware(HubRouter(HubConsumer)))
