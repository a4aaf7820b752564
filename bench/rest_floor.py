"""The floor peer of bench/rest_broadcast.py: the hub's own ASGI application, plus ONE extra
route that does only the publish, mounted only here (never in realtime_project.asgi).

``POST /bench/floor`` with ``{"channel", "message": {"type", "data"}}``: no authentication,
no validation beyond json.loads, no audit, no rate limit: ``hub.publish.publish`` and a JSON
answer. Same process, same daphne, same engine as ``POST /api/broadcast``: the difference
between the two is what the broadcast route's rules cost.

``drf_only``: the hub without the lean broadcast route (every request to the DRF view), for
the before/after row.
"""

from __future__ import annotations

import json

from realtime_project.asgi import application as hub_application  # noqa: F401  (django.setup)
from realtime_project.asgi import django_asgi_app

from channels.routing import ProtocolTypeRouter  # noqa: E402

from hub import publish as hub_publish  # noqa: E402
from hub.routing import build_websocket_application  # noqa: E402

HEADERS = [(b"content-type", b"application/json")]


async def application(scope, receive, send):
    if scope["type"] != "http" or scope["path"] != "/bench/floor":
        return await hub_application(scope, receive, send)
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = json.loads(b"".join(chunks))
    offset = await hub_publish.publish(body["channel"], body["message"]["type"], body["message"].get("data"))
    payload = json.dumps({"success": True, "channel": body["channel"], "offset": offset}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [*HEADERS, (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


drf_only = ProtocolTypeRouter({"http": django_asgi_app, "websocket": build_websocket_application()})
