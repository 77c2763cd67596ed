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
