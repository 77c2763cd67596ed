"""The ASGI application: Django for HTTP, and on ``ws/`` the consumer that
``BENCH_STACK`` names."""

import os

import django

if os.environ.get("BENCH_PROFILE"):
    # Profile the event loop's thread (daphne runs it in the main thread) until
    # the process exits: ``BENCH_PROFILE=/tmp/prof python -m bench --only ...``
    # writes ``/tmp/prof.<stack>.<pid>`` per server, for ``pstats``.
    import atexit
    import cProfile

    _profile = cProfile.Profile()
    _profile.enable()
    _out = (
        f"{os.environ['BENCH_PROFILE']}.{os.environ.get('BENCH_STACK')}.{os.getpid()}"
    )
    atexit.register(lambda: (_profile.disable(), _profile.dump_stats(_out)))

django.setup()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.urls import path  # noqa: E402
from django.utils.module_loading import import_string  # noqa: E402

CATALOG = "bench.project.catalog"
STACKS = {
    "binding": "channels_binding.consumers.AsyncConsumer",
    "users": "channels_binding.consumers.AsyncConsumer",
    "hand": f"{CATALOG}.plain.HandConsumer",
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
