"""JSON Schemas of what travels: the frames of the protocol, the parameters of
``list`` and ``search``, and each binding's rows and writes from its serializer.

The OpenAPI document of the HTTP side (:mod:`.http.openapi`) and the AsyncAPI
document of the websocket (:mod:`.asyncapi`) are built from them. Field types come
from Django REST framework's own OpenAPI field mapping
(``rest_framework.schemas.openapi.AutoSchema``), written as plain JSON Schema
(draft 7, which both documents accept): a field that may be null gets a ``"null"``
type, and each serializer gives two schemas, the row it shows (no write-only
field) and the data it takes (no read-only field).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import FieldDoesNotExist
from django.utils.functional import Promise
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.schemas.openapi import AutoSchema

from . import filters
from .events.request import BindingRequest

OBJECT = {"type": "object", "additionalProperties": True}
ID = {"type": ["string", "integer"], "description": "A primary key."}
POSITIVE = {
    "type": ["integer", "string"],
    "minimum": 1,
    "pattern": "^[0-9]+$",
    "description": "A positive integer, or a string of digits.",
}
FILTER_VALUE = {"type": ["string", "number", "boolean", "null"]}
ERROR_CODES = [
    "invalid",
    "parse_error",
    "not_authenticated",
    "permission_denied",
    "not_found",
    "unknown_event",
    "method_not_allowed",
    "too_large",
    "throttled",
    "server_error",
]

#: Fields whose output DRF's mapping cannot know: any JSON value.
UNTYPED_FIELDS = (
    serializers.ReadOnlyField,
    serializers.SerializerMethodField,
    serializers.JSONField,
    serializers.ModelField,
)


def event_schema(pattern: str | None = None, description: str = "") -> dict:
    """The ``event`` of a frame: any string, or the events matching ``pattern`` (a
    regular expression matched against the whole event, ``#hash`` excluded)."""
    schema: dict[str, Any] = {"type": "string"}
    if pattern is not None:
        schema["pattern"] = f"^{pattern}(#.*)?$"
    if description:
        schema["description"] = description
    return schema


def request_frame(event: dict, data: dict) -> dict:
    return {
        "type": "object",
        "required": ["event"],
        "properties": {
            "event": event,
            "data": data,
            "request_id": {"description": "Any JSON value, echoed in the reply."},
        },
    }


def reply_frame(event: dict, data: dict) -> dict:
    return {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": event,
            "data": data,
            "request_id": {"description": "The request's, when it had one."},
        },
    }


def push_frame(event: dict, data: dict) -> dict:
    schema = reply_frame(event, data)
    del schema["properties"]["request_id"]
    schema["properties"]["pos"] = {
        "type": "integer",
        "minimum": 1,
        "description": "The push's number, on a connection opened with `resume=1`.",
    }
    return schema


def error_frame(event: dict | None = None) -> dict:
    return {
        "type": "object",
        "required": ["event", "error"],
        "properties": {
            "event": {
                "anyOf": [event or {"type": "string"}, {"type": "null"}],
                "description": "The request's event; null for an unreadable frame.",
            },
            "error": {
                "type": "object",
                "required": ["status", "code", "detail"],
                "properties": {
                    "status": {"type": "integer", "minimum": 400, "maximum": 599},
                    "code": {"type": "string", "examples": ERROR_CODES},
                    "detail": {
                        "type": ["string", "object"],
                        "description": "A message, or field names to messages.",
                    },
                },
            },
            "request_id": {"description": "The request's, when it had one."},
        },
    }


def _plain(value: Any) -> Any:
    """``value`` as JSON can hold it (DRF's mapping may give decimals, lazy text)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Promise):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _or_null(schema: dict) -> dict:
    kind = schema.get("type")
    if isinstance(kind, str):
        schema = {**schema, "type": [kind, "null"]}
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
        return schema
    if "enum" in schema:
        return {**schema, "enum": [*schema["enum"], None]}
    return {"anyOf": [schema, {"type": "null"}]} if schema else schema


class SerializerSchema(AutoSchema):
    """DRF's field mapping, as the JSON Schema of the rows a serializer shows
    (``read=True``) or of the data it takes (``read=False``)."""

    def __init__(self, read: bool) -> None:
        super().__init__()
        self.read = read

    def map_field(self, field: serializers.Field) -> dict:
        if isinstance(field, UNTYPED_FIELDS):
            return {}
        return super().map_field(field)

    def map_serializer(self, serializer: serializers.BaseSerializer) -> dict:
        properties: dict[str, dict] = {}
        required = []
        model = getattr(getattr(serializer, "Meta", None), "model", None)
        for field in serializer.fields.values():
            if isinstance(field, serializers.HiddenField):
                continue
            if field.write_only if self.read else field.read_only:
                continue
            schema = self.map_field(field)
            self.map_field_validators(field, schema)
            if field.help_text:
                schema["description"] = str(field.help_text)
            if not self.read and field.default is not empty:
                if not callable(field.default):
                    schema["default"] = field.default
            if field.allow_null or (self.read and _null_in_model(field, model)):
                schema = _or_null(schema)
            name = self.get_field_name(field)
            properties[name] = _plain(schema)
            if self.read or field.required:
                required.append(name)
        result: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            result["required"] = required
        return result


def _null_in_model(field: serializers.Field, model: Any) -> bool:
    """Whether the model column a field shows may be null: a serializer shows null
    for a missing relation even when the field does not allow null on input."""
    if model is None or not re.fullmatch(r"\w+", field.source or ""):
        return False
    try:
        return bool(model._meta.get_field(field.source).null)
    except FieldDoesNotExist:
        return False


def serializer_of(binding: type) -> serializers.BaseSerializer | None:
    """The serializer a binding builds for an anonymous ``retrieve``, or ``None``
    when it has none (no model) or cannot build one without a real request."""
    if binding.model is None and binding.serializer_class is None:
        return None
    request = BindingRequest(
        event=f"{binding.stream}.retrieve",
        stream=binding.stream,
        action="retrieve",
        user=AnonymousUser(),
        transport="schema",
    )
    try:
        return binding(request).get_serializer()
    except Exception:  # noqa: BLE001 - a hook that needs a real user or request
        return None


def row_schemas(binding: type) -> tuple[dict, dict]:
    """``(row, write)``: the JSON Schema of the objects a binding sends, and of the
    fields ``create`` takes (``update`` takes any of them)."""
    serializer = serializer_of(binding)
    if serializer is None:
        return OBJECT, OBJECT
    return (
        SerializerSchema(read=True).map_serializer(serializer),
        SerializerSchema(read=False).map_serializer(serializer),
    )


def filter_keys(binding: type) -> list[str]:
    """The filter names a binding accepts in ``filters`` (and as query parameters)."""
    if binding.filterset_class is not None:
        return list(binding.filterset_class.base_filters)
    return list(filters.declared_filters(binding))


def list_params(binding: type, *, search: bool) -> dict:
    """The ``data`` of a ``list`` (or, with ``search``, ``search``) request."""
    ordering = [
        term for field in binding.ordering_fields for term in (field, f"-{field}")
    ]
    term = {"type": "string", "enum": ordering} if ordering else {"type": "string"}
    keys = filter_keys(binding)
    properties: dict[str, Any] = {
        "page": POSITIVE,
        "limit": POSITIVE,
        "ordering": {
            "anyOf": [
                {"type": "string", "description": "Comma-separated terms."},
                {"type": "array", "items": term},
                {"type": "null"},
            ],
            "description": f"Of: {', '.join(ordering) or 'none'}.",
        },
        "filters": {
            "type": ["object", "null"],
            "properties": {
                key: {"anyOf": [FILTER_VALUE, {"type": "array", "items": FILTER_VALUE}]}
                for key in keys
            },
            "additionalProperties": False,
        },
    }
    if search:
        properties["query"] = {
            "type": ["string", "null"],
            "description": f"Words to find in: {', '.join(binding.search_fields)}.",
        }
    return {"type": "object", "properties": properties}


def page_schema(row: dict) -> dict:
    return {
        "type": "object",
        "required": ["page", "limit", "count", "rows"],
        "properties": {
            "page": {"type": "integer", "minimum": 1},
            "limit": {"type": "integer", "minimum": 1},
            "count": {"type": "integer", "minimum": 0},
            "rows": {"type": "array", "items": row},
        },
    }
