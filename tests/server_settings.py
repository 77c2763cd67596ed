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
            "CONFIG": {"hosts": [os.environ["CB_REDIS_URL"]]},
        }
    }
