"""The ``CHANNELS_BINDING`` settings dict, read lazily.

Like DRF's ``api_settings``: values are looked up on first use, dotted paths are
imported, and the cache is dropped on Django's ``setting_changed`` signal, so
``override_settings(CHANNELS_BINDING=...)`` works in tests.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

SETTING_NAME = "CHANNELS_BINDING"

#: Every key of ``CHANNELS_BINDING`` and its default.
DEFAULTS: dict[str, Any] = {
    "AUTHENTICATION_CLASSES": [
        "channels_binding.authentication.ScopeUserAuthentication",
        "channels_binding.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticatedOrReadOnly",
    ],
    "DEFAULT_PAGE_SIZE": 25,
    "MAX_PAGE_SIZE": 100,
    "MAX_QUERY_LENGTH": 256,
    "MAX_FILTER_VALUE_LENGTH": 256,
    # What one connection may watch (channels_binding/live/limits.py).
    "MAX_SUBSCRIPTION_BYTES": 128 * 1024,
    "MAX_COLLECTION_WATCHES": 10,
    "ANONYMOUS_MAX_COLLECTION_WATCHES": 5,
    "MAX_COLLECTION_LOOKUPS": 40,
    "ANONYMOUS_CONNECTION_ALLOWED": True,
    "AUTO_SUBSCRIBE": True,
    "MAX_FRAME_BYTES": 1024 * 1024,
    "THROTTLE_RATES": None,
    "MAX_CONCURRENT_REQUESTS": 16,
    # The request frames one connection may have in progress, in bytes.
    "MAX_PENDING_REQUEST_BYTES": 4 * 1024 * 1024,
    "OUTGOING_BUFFER_BYTES": 2 * 1024 * 1024,
    "MAX_SUBSCRIPTIONS": 1000,
    # Delivery guarantees (docs/live.rst, "What is guaranteed").
    "LIVE_RESYNC": True,
    "LIVE_CHECK_SECONDS": 0.5,
    "LIVE_GAP_SECONDS": 1.0,
    "HUB_CAPACITY": 10_000,
    "HUB_REJOIN_SECONDS": 3600,
    "RESUME_SECONDS": 60,
    "RESUME_BUFFER_BYTES": 256 * 1024,
    # "close" (4401) or "downgrade" (anonymous) when the identity is revoked.
    "REVOKED_CONNECTIONS": "close",
    # Every open connection's credentials are checked again this often (0: never).
    "AUTH_RECHECK_SECONDS": 300,
    "CLIENT_NOTIFICATIONS": False,
    "CONNECTION_PERMISSION_CLASS": "channels_binding.permissions.ConnectionPermission",
    "DEFAULT_FIELDS_EXCLUDE": ["password"],
    "BINDINGS_MODULES": [],
    # None: DRF's SessionAuthentication, plus its TokenAuthentication when
    # rest_framework.authtoken is installed (see channels_binding.views).
    "HTTP_AUTHENTICATION_CLASSES": None,
}

# Keys whose values are dotted paths (or lists of them) to import.
IMPORT_STRINGS = {
    "AUTHENTICATION_CLASSES",
    "DEFAULT_PERMISSION_CLASSES",
    "CONNECTION_PERMISSION_CLASS",
    "HTTP_AUTHENTICATION_CLASSES",
}

# The first channels-binding spelled this key with an "F"; keep accepting it.
ALIASES = {"AUTHENTIFICATION_CLASSES": "AUTHENTICATION_CLASSES"}


def _import(value: Any, key: str) -> Any:
    if isinstance(value, str):
        try:
            return import_string(value)
        except ImportError as exc:
            raise ImportError(
                f"Could not import {value!r} for {SETTING_NAME}[{key!r}]: {exc}"
            ) from exc
    if isinstance(value, list | tuple):
        return [_import(item, key) for item in value]
    return value


class BindingSettings:
    """Attribute access to ``settings.CHANNELS_BINDING`` merged with defaults."""

    def __init__(self) -> None:
        self._cached: set[str] = set()

    @property
    def user_settings(self) -> dict[str, Any]:
        raw = getattr(settings, SETTING_NAME, None) or {}
        merged = dict(raw)
        for alias, key in ALIASES.items():
            if alias in merged and key not in merged:
                merged[key] = merged.pop(alias)
        return merged

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_") or key not in DEFAULTS:
            raise AttributeError(f"Invalid {SETTING_NAME} setting: {key!r}")
        value = self.user_settings.get(key, DEFAULTS[key])
        if key in IMPORT_STRINGS:
            value = _import(value, key)
        # Set on the instance: the next read does not come back here.
        setattr(self, key, value)
        self._cached.add(key)
        return value

    def reload(self) -> None:
        for key in self._cached:
            delattr(self, key)
        self._cached.clear()


#: The settings, read lazily: ``binding_settings.DEFAULT_PAGE_SIZE``. Keys you did
#: not set have their defaults (:data:`DEFAULTS`); dotted paths are imported.
binding_settings = BindingSettings()


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        binding_settings.reload()


setting_changed.connect(_reload)
