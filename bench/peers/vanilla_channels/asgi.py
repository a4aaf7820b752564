import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.peers.vanilla_channels.settings")

import django  # noqa: E402

django.setup()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from bench.peers.vanilla_channels.consumers import BenchConsumer  # noqa: E402

application = ProtocolTypeRouter({
    "websocket": URLRouter([re_path(r"^ws/?$", BenchConsumer.as_asgi())]),
})
