"""The OpenAPI 3.1 description of the HTTP side, built from the registry.

``GET <prefix>openapi.json`` (:class:`OpenAPIView`) serves it. Request and
reply bodies are generic objects; what the document spells out is the routes: every
stream's REST paths for the actions it allows, its custom events, the list
parameters with each declared filter, and ``events/``.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from rest_framework import authentication

from .. import __version__
from ..bindings import BUILTIN_ACTIONS, GenericBinding
from ..registry import registry
from ..schema import OBJECT, error_frame, event_schema, filter_keys, reply_frame
from .views import LIST_LOOKUPS, BindingAPIView, http_authentication_classes

REPLY = {"$ref": "#/components/schemas/Reply"}
ERROR = {"$ref": "#/components/schemas/Error"}


def _operation(binding: type[GenericBinding], name: str, summary: str, **extra):
    event = f"{binding.stream}.{name}"
    operation = {
        "operationId": event,
        "summary": summary,
        "description": f"Answers the event `{event}`.",
        "tags": [binding.stream],
        "responses": {
            "200": {"description": "The reply frame.", "content": _json(REPLY)},
            "default": {"description": "An error frame.", "content": _json(ERROR)},
        },
    }
    operation.update(extra)
    return operation


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def _body(description: str) -> dict:
    return {"required": False, "description": description, "content": _json(OBJECT)}


def _query(name: str, description: str, schema: dict | None = None) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _list_parameters(binding: type[GenericBinding]) -> list[dict]:
    integer = {"type": "integer", "minimum": 1}
    ordering = ", ".join(binding.ordering_fields) or "none"
    search = ", ".join(binding.search_fields) or "none"
    parameters = [
        _query("page", "The page, from 1.", integer),
        _query("limit", "Rows per page (lowered to the maximum).", integer),
        _query("ordering", f"Comma-separated fields, `-` for descending: {ordering}."),
        _query("query", f"Makes the list a `search` over: {search}."),
    ]
    for key in filter_keys(binding):
        split = " (comma-separated)" if key.endswith(LIST_LOOKUPS) else ""
        parameters.append(_query(key, f"Filter `{key}`{split}."))
    return parameters


def _stream_paths(binding: type[GenericBinding], base: str) -> dict[str, dict]:
    prefix = base + binding.stream.replace(".", "/") + "/"
    events = binding.events
    collection: dict[str, Any] = {}
    if "list" in events or "search" in events:
        collection["get"] = _operation(
            binding,
            "list",
            "List (or, with `query`, search)",
            parameters=_list_parameters(binding),
        )
    if "create" in events:
        collection["post"] = _operation(
            binding, "create", "Create", requestBody=_body("The fields.")
        )
    item: dict[str, Any] = {}
    if "retrieve" in events:
        item["get"] = _operation(binding, "retrieve", "Retrieve")
    if "update" in events:
        fields = _body("The fields.")
        item["put"] = _operation(binding, "update", "Full update", requestBody=fields)
        item["put"]["operationId"] += ".full"
        item["patch"] = _operation(
            binding, "update", "Partial update", requestBody=fields
        )
    if "delete" in events:
        item["delete"] = _operation(binding, "delete", "Delete")
    paths: dict[str, dict] = {}
    if collection:
        paths[prefix] = collection
    if item:
        pk = {
            "name": "pk",
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
        }
        paths[prefix + "{pk}/"] = {"parameters": [pk], **item}
    for name in events:
        if name not in BUILTIN_ACTIONS or name == "save":
            body = _body("The event's `data`.")
            paths[f"{prefix}{name}/"] = {
                "post": _operation(binding, name, name, requestBody=body)
            }
    return paths


def _security_schemes() -> dict[str, dict]:
    schemes = {}
    for auth_class in http_authentication_classes():
        if issubclass(auth_class, authentication.SessionAuthentication):
            schemes["session"] = {
                "type": "apiKey",
                "in": "cookie",
                "name": settings.SESSION_COOKIE_NAME,
                "description": "A Django session; unsafe methods need the CSRF token.",
            }
        elif issubclass(auth_class, authentication.TokenAuthentication):
            schemes["token"] = {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": f"`{auth_class.keyword} <key>`.",
            }
    return schemes


def document(base: str = "/") -> dict[str, Any]:
    """The OpenAPI 3.1 document of every registered stream, served under ``base``."""
    bindings = list(registry)
    all_events = [f"{b.stream}.{name}" for b in bindings for name in b.events]
    frame = {
        "type": "object",
        "required": ["event"],
        "properties": {
            "event": {
                "type": "string",
                "description": "`<stream>.<action>[#<hash>]`.",
                "examples": all_events,
            },
            "data": OBJECT,
            "request_id": {"description": "Echoed in the reply."},
        },
    }
    paths: dict[str, dict] = {
        base + "events/": {
            "post": {
                "operationId": "events",
                "summary": "Answer one websocket frame",
                "description": "Any event of any stream, as over the websocket.",
                "requestBody": {"required": True, "content": _json(frame)},
                "responses": {
                    "200": {"description": "The reply frame.", "content": _json(REPLY)},
                    "default": {
                        "description": "An error frame.",
                        "content": _json(ERROR),
                    },
                },
            }
        }
    }
    for binding in bindings:
        paths.update(_stream_paths(binding, base))
    schemes = _security_schemes()
    return {
        "openapi": "3.1.0",
        "info": {"title": "channels-binding", "version": __version__},
        "tags": [
            {
                "name": binding.stream,
                "description": (binding.__doc__ or "").strip().split("\n")[0],
                "x-events": [f"{binding.stream}.{name}" for name in binding.events],
            }
            for binding in bindings
        ],
        "paths": paths,
        "components": {
            "schemas": {
                "Frame": frame,
                "Reply": reply_frame(event_schema(), {}),
                "Error": error_frame(),
            },
            "securitySchemes": schemes,
        },
        "security": [{name: []} for name in schemes] + [{}],
    }


class OpenAPIView(BindingAPIView):
    """``GET openapi.json``: an OpenAPI 3.1 description of every stream's routes."""

    allowed = ("GET",)

    def get(self, request, *args: Any, **kwargs: Any) -> HttpResponse:
        base = request.path[: -len("openapi.json")]
        return self.respond(json.dumps(document(base)))
