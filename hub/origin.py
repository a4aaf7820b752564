"""Origin check at the WebSocket handshake (PROTOCOL.md §2).

Channels' OriginValidator refuses handshakes without an Origin header; the protocol lets
them through (non-browser clients send none), so the check is ours. A refused handshake is
closed before accept, which daphne answers with HTTP 403 and no socket.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import validate_host

from hub.conf import hub_settings


def origin_allowed(origin: str, allowed: list[str], allowed_hosts: list[str]) -> bool:
    """``allowed``: exact origins (``https://a.example:8443``), ``*``, or host patterns
    (``.example.com``). Empty: the origin's host must be one of Django's ALLOWED_HOSTS."""
    if "*" in allowed:
        return True
    parts = urlsplit(origin.strip().lower())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if not allowed:
        return validate_host(host, allowed_hosts)
    normalized = f"{parts.scheme}://{parts.netloc}"
    host_patterns = [entry.lower() for entry in allowed if "://" not in entry]
    return (normalized in {entry.lower().rstrip("/") for entry in allowed}
            or validate_host(host, host_patterns))


class OriginCheckMiddleware:
    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            origin = None
            for name, value in scope.get("headers", ()):
                if name == b"origin":
                    origin = value.decode("latin-1")
                    break
            if origin is not None and not origin_allowed(
                    origin, hub_settings.ALLOWED_ORIGINS, settings.ALLOWED_HOSTS):
                await receive()  # websocket.connect
                await send({"type": "websocket.close"})
                return None
        return await self.inner(scope, receive, send)
