"""Settings for the channels-binding demo project.

Meant for local use only: `make demo` serves it on http://127.0.0.1:8000/.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "demo-only-not-secret"  # never deploy this project
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    # daphne first, so `manage.py runserver` serves ASGI (websockets included).
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "channels",
    "channels_binding",
    "catalog",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo_project.urls"
ASGI_APPLICATION = "demo_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        # DEMO_DB lets the browser tests run the demo on a database of their own.
        "NAME": os.environ.get("DEMO_DB") or BASE_DIR / "db.sqlite3",
        # Persistent connections: opening a SQLite connection costs more than most
        # websocket requests. Channels closes stale ones in its database threads.
        "CONN_MAX_AGE": None,
        "OPTIONS": {"timeout": 20},
    }
}

# One process, nothing to install. Set CHANNELS_BINDING_REDIS_URL (for example
# redis://127.0.0.1:6379/0) to share pushes between several server processes.
if os.environ.get("CHANNELS_BINDING_REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py 8 reads with a 5 s socket timeout, the same as
            # channels_redis's blocking pop: give the socket more time.
            "CONFIG": {
                "hosts": [
                    {
                        "address": os.environ["CHANNELS_BINDING_REDIS_URL"],
                        "socket_timeout": 15,
                    }
                ]
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CHANNELS_BINDING = {
    "DEFAULT_PAGE_SIZE": 25,
    "MAX_PAGE_SIZE": 100,
    "ANONYMOUS_CONNECTION_ALLOWED": True,
    # The chat room and "notify a user" relay messages from the browser. The
    # default ConnectionPermission lets signed-in users post to the channels they
    # joined (?channel=lobby) and notify any user; anonymous clients never relay.
    "CLIENT_NOTIFICATIONS": True,
}

AUTH_PASSWORD_VALIDATORS = []  # the demo users have one-word passwords

LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
