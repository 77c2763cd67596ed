"""Settings of the benchmark project; the environment says what to serve.

``BENCH_STACK``  the websocket consumer under test (see :mod:`bench.project.asgi`);
                 ``binding`` and ``users`` install channels-binding, ``users``
                 with the per-user binding of :mod:`.catalog.peruser`
``BENCH_DB``     the SQLite file, shared by every server of one run
``BENCH_REDIS_URL``  use channels_redis' ``RedisChannelLayer`` instead of the
                 in-memory layer
``BENCH_COUNT_QUERIES``  count every SQL query (:mod:`.catalog.querycount`)
"""

import os

STACK = os.environ.get("BENCH_STACK", "binding")

SECRET_KEY = "bench-only-not-secret-but-long-enough-for-hmac-sha256"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "bench.project.urls"
ASGI_APPLICATION = "bench.project.asgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "rest_framework",
    "channels",
    "bench.project.catalog",
]
# Only the channels-binding stacks load the library: its signal receivers then run
# in no other stack's measurements.
if STACK in ("binding", "users"):
    INSTALLED_APPS.append("channels_binding")
if STACK == "users":
    CHANNELS_BINDING = {"BINDINGS_MODULES": ["bench.project.catalog.peruser"]}

MIDDLEWARE = []

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_DB", "bench.sqlite3"),
        # Persistent connections, as the demo and the docs recommend: opening a
        # SQLite connection costs more than a small request.
        "CONN_MAX_AGE": None,
        "OPTIONS": {"timeout": 20},
    }
}

if os.environ.get("BENCH_REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {"address": os.environ["BENCH_REDIS_URL"], "socket_timeout": 15}
                ]
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
