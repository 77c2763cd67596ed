"""System checks: misconfigurations found at start-up rather than at the first frame."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured

from .registry import registry
from .settings import ALIASES, DEFAULTS, SETTING_NAME
from .websocket.throttling import ConnectionThrottle


@register(Tags.security, Tags.compatibility)
def check_settings(app_configs=None, **kwargs):
    raw = getattr(settings, SETTING_NAME, None) or {}
    if not isinstance(raw, dict):
        return [
            Error(
                f"settings.{SETTING_NAME} must be a dict.",
                id="channels_binding.E002",
            )
        ]
    return [
        Warning(
            f"Unknown key {key!r} in settings.{SETTING_NAME}.",
            hint=f"Known keys: {', '.join(sorted(DEFAULTS))}.",
            id="channels_binding.W002",
        )
        for key in raw
        if key not in DEFAULTS and key not in ALIASES
    ]


@register(Tags.compatibility)
def check_channel_layer(app_configs=None, **kwargs):
    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    if "default" not in layers:
        return [
            Warning(
                "No default channel layer: subscriptions are accepted but nothing "
                "is ever pushed.",
                hint='Set CHANNEL_LAYERS = {"default": {"BACKEND": '
                '"channels.layers.InMemoryChannelLayer"}} for one process, or '
                "channels_redis for several.",
                id="channels_binding.W003",
            )
        ]
    backend = layers["default"].get("BACKEND", "")
    if not backend.startswith("channels_redis.") or not _redis_py_8():
        return []
    hosts = layers["default"].get("CONFIG", {}).get("hosts") or [None]
    if all(isinstance(h, dict) and "socket_timeout" in h for h in hosts):
        return []
    return [
        Warning(
            "redis-py 8 gives every Redis read a 5 second socket timeout, which "
            "makes channels_redis drop idle connections.",
            hint='Give each host a longer timeout: "hosts": [{"address": '
            '"redis://...", "socket_timeout": 15}].',
            id="channels_binding.W004",
        )
    ]


def _redis_py_8() -> bool:
    try:
        import redis
    except ImportError:
        return False
    return int(redis.__version__.split(".")[0]) >= 8


@register(Tags.compatibility)
def check_throttle_rates(app_configs=None, **kwargs):
    rates = (getattr(settings, SETTING_NAME, None) or {}).get("THROTTLE_RATES")
    try:
        ConnectionThrottle(rates)
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="channels_binding.E003")]
    except (TypeError, AttributeError):
        return [
            Error(
                "THROTTLE_RATES must be a rate string or a dict of rates.",
                id="channels_binding.E003",
            )
        ]
    return []


#: Settings that are a number of bytes, characters or things, or ``None``.
LIMITS = (
    "MAX_QUERY_LENGTH",
    "MAX_FILTER_VALUE_LENGTH",
    "MAX_SUBSCRIPTION_BYTES",
    "MAX_COLLECTION_WATCHES",
    "ANONYMOUS_MAX_COLLECTION_WATCHES",
    "MAX_COLLECTION_LOOKUPS",
    "MAX_PENDING_REQUEST_BYTES",
)


@register(Tags.security, Tags.compatibility)
def check_limits(app_configs=None, **kwargs):
    raw = getattr(settings, SETTING_NAME, None) or {}
    if not isinstance(raw, dict):
        return []  # E002
    return [
        Error(
            f"{SETTING_NAME}[{key!r}] must be a whole number of zero or more, or "
            f"None for no limit; it is {raw[key]!r}.",
            id="channels_binding.E004",
        )
        for key in LIMITS
        if key in raw and not _is_limit(raw[key])
    ]


@register(Tags.security, Tags.compatibility)
def check_recheck_seconds(app_configs=None, **kwargs):
    raw = getattr(settings, SETTING_NAME, None) or {}
    value = raw.get("AUTH_RECHECK_SECONDS", 0) if isinstance(raw, dict) else 0
    if value is None or (
        isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    ):
        return []
    return [
        Error(
            f"{SETTING_NAME}['AUTH_RECHECK_SECONDS'] must be a number of seconds, or "
            f"0 or None to never check credentials again; it is {value!r}.",
            id="channels_binding.E005",
        )
    ]


def _is_limit(value) -> bool:
    if value is None:
        return True
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _path(binding) -> str:
    return f"{binding.__module__}.{binding.__qualname__}"


@register(Tags.security, Tags.models)
def check_bindings(app_configs=None, **kwargs):
    messages = []
    for binding in registry:
        model = binding.model
        if model is None:
            continue
        if binding.serializer_class is None and binding.fields is None:
            messages.append(
                Warning(
                    f"{_path(binding)} exposes every field of {model._meta.label} "
                    "but DEFAULT_FIELDS_EXCLUDE.",
                    hint="Set `fields` or `serializer_class` so that a field added "
                    "to the model later is not published by accident.",
                    obj=binding,
                    id="channels_binding.W001",
                )
            )
        messages.extend(_check_field_names(binding, model))
    return messages


def _check_field_names(binding, model):
    declared = dict.fromkeys(binding.ordering_fields or ())
    filter_fields = binding.filter_fields or ()
    declared.update(dict.fromkeys(filter_fields))
    for name in binding.search_fields or ():
        declared[name.lstrip("^=")] = None
    for name in declared:
        if not _resolves(model, name):
            yield Error(
                f"{_path(binding)} declares {name!r}, which is not a field of "
                f"{model._meta.label}.",
                hint="Check search_fields, filter_fields and ordering_fields.",
                obj=binding,
                id="channels_binding.E001",
            )


def _resolves(model, path: str) -> bool:
    for part in path.split("__"):
        if part == "pk":
            part = model._meta.pk.name
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            return False
        if field.is_relation and field.related_model is not None:
            model = field.related_model
    return True
