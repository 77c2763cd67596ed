"""The ASGI application the tests (and the real-server tests) talk to."""

import django

django.setup()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.urls import path  # noqa: E402

from channels_binding.consumers import AsyncConsumer, SyncConsumer  # noqa: E402

websocket_urls = [
    path("ws/", AsyncConsumer.as_asgi()),
    path("ws/sync/", SyncConsumer.as_asgi()),
]

application = ProtocolTypeRouter(
    {
        "http": get_asgi_application(),
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urls)),
    }
)
