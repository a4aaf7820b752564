"""WebSocket routing: /ws/, /ws, /ws/<client_id>, /ws/<client_id>/ and / (PROTOCOL.md §1)."""

from __future__ import annotations


def build_websocket_application():
    from django.urls import re_path

    from channels.routing import URLRouter

    from hub.socket.auth import HubAuthMiddleware
    from hub.socket.consumers import HubConsumer
    from hub.socket.origin import OriginCheckMiddleware

    consumer = HubConsumer.as_asgi()
    router = URLRouter([
        re_path(r"^ws/?$", consumer),
        re_path(r"^ws/(?P<client_id>[^/]+)/?$", consumer),
        re_path(r"^$", consumer),
    ])
    return OriginCheckMiddleware(HubAuthMiddleware(router))
