"""ASGI entry point: HTTP goes to Django, WebSocket to the hub (see hub.routing)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_project.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from hub.routing import build_websocket_application  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": build_websocket_application(),
})
