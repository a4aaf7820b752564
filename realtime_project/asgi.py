"""ASGI entry point: HTTP goes to Django, WebSocket to the hub (see hub.routing)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_project.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from hub.rest.broadcast_route import wrap as with_broadcast_route  # noqa: E402
from hub.routing import ProtocolRouter, build_websocket_application  # noqa: E402

application = ProtocolRouter({
    "http": with_broadcast_route(django_asgi_app),  # POST /api/broadcast's fast path
    "websocket": build_websocket_application(),
})
