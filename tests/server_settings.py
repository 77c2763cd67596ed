"""Settings for real server processes started by the tests.

Like tests.settings, but with a database file (``CB_TEST_DB``) that the test and
every server process share, and the Redis channel layer when ``CB_REDIS_URL`` is set.
"""

import os

from tests.settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["CB_TEST_DB"],
        "OPTIONS": {"timeout": 20},
    }
}

if os.environ.get("CB_REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": os.environ.get(
                "CB_REDIS_BACKEND", "channels_redis.core.RedisChannelLayer"
            ),
            # redis-py 8 reads with a 5 s socket timeout, the same as
            # channels_redis's blocking pop: give the socket more time.
            "CONFIG": {
                "hosts": [{"address": os.environ["CB_REDIS_URL"], "socket_timeout": 15}]
            },
        }
    }

if os.environ.get("CB_OUTGOING_BUFFER_BYTES"):
    CHANNELS_BINDING = {
        **CHANNELS_BINDING,  # noqa: F405
        "OUTGOING_BUFFER_BYTES": int(os.environ["CB_OUTGOING_BUFFER_BYTES"]),
    }

# Without Redis: another in-process layer, such as tests.lossy_layer's.
if not os.environ.get("CB_REDIS_URL") and os.environ.get("CB_LAYER_BACKEND"):
    CHANNEL_LAYERS = {"default": {"BACKEND": os.environ["CB_LAYER_BACKEND"]}}

# CB_LIVE_RESYNC=0: the hubs do not resync after a possible loss (LIVE_RESYNC), so
# that a test can show that loss is detectable.
if os.environ.get("CB_LIVE_RESYNC"):
    CHANNELS_BINDING = {
        **CHANNELS_BINDING,  # noqa: F405
        "LIVE_RESYNC": os.environ["CB_LIVE_RESYNC"].lower() not in ("0", "false"),
    }

# The stress harness (tests/stress.py): pages big enough for every watched
# collection, its in-process ORM writer's stream, and write transactions that take
# SQLite's write lock at BEGIN (several processes write the same file).
if os.environ.get("CB_STRESS"):
    CHANNELS_BINDING = {
        **CHANNELS_BINDING,  # noqa: F405
        "MAX_PAGE_SIZE": 1000,
        "BINDINGS_MODULES": [
            *CHANNELS_BINDING.get("BINDINGS_MODULES", []),  # noqa: F405
            "tests.stress_bindings",
        ],
    }
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
