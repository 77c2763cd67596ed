"""The ASGI application: Django for HTTP, and on ``ws/`` the consumer that
``BENCH_STACK`` names."""

import os

import django

django.setup()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.urls import path  # noqa: E402
from django.utils.module_loading import import_string  # noqa: E402

CATALOG = "bench.project.catalog"
STACKS = {
    "binding": "channels_binding.consumers.AsyncConsumer",
    "hand": f"{CATALOG}.plain.HandRetrieveConsumer",
    "echo": f"{CATALOG}.plain.EchoConsumer",
    "idle": f"{CATALOG}.plain.IdleConsumer",
    "groupsend": f"{CATALOG}.groupsend.GroupWatcherConsumer",
    "dcrf": f"{CATALOG}.dcrf.retrieve.RetrieveConsumer",
    "dcrf_observer": f"{CATALOG}.dcrf.observer.ObserverConsumer",
    "dcrf_instance": f"{CATALOG}.dcrf.instance.InstanceConsumer",
}

consumer = import_string(STACKS[os.environ.get("BENCH_STACK", "binding")])

application = ProtocolTypeRouter(
    {
        "http": get_asgi_application(),
        "websocket": AuthMiddlewareStack(URLRouter([path("ws/", consumer.as_asgi())])),
    }
)
