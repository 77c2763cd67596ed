"""The AsyncAPI 3.0 document of the websocket, built from the registry
(``python manage.py bindings --asyncapi``).

It describes the server. Each stream is a channel, and so are the connection's own
events (``connection``): all of them travel over the one websocket where the
consumer is mounted, told apart by the frames' ``event``, so channels have no
address. Each event is an operation the server receives and replies to (with the
reply or an error frame, correlated by ``request_id``); the pushes of live data and
of notifications are operations it sends. Payloads are whole frames; the ``data``
of a stream's rows and writes comes from its serializer (see :mod:`.schema`).
"""

from __future__ import annotations

import re
from typing import Any

from . import __version__, schema
from .bindings import BUILTIN_ACTIONS
from .permissions import event_permission_classes, permission_name
from .registry import registry
from .settings import binding_settings

CORRELATION = {
    "description": "A reply carries the request's `request_id`.",
    "location": "$message.payload#/request_id",
}
DESCRIPTION = """\
The events of a channels-binding websocket, as the server sees them: every frame is \
one JSON object; a request names an event `<stream>.<action>[#<hash>]`, and the \
reply, or an error frame, echoes its event and `request_id`. All the channels below \
share the one websocket where the consumer is mounted (`/ws/`, say). See the wire \
protocol in the channels-binding documentation."""

SUBSCRIBED = {"type": "object", "properties": {"subscribed": {"type": "boolean"}}}
SUCCESS = {
    "type": "object",
    "required": ["success", "id"],
    "properties": {"success": {"const": True}, "id": schema.ID},
}
DELETED = {"type": "object", "required": ["id"], "properties": {"id": schema.ID}}
RESYNC = {
    "type": "object",
    "properties": {
        "filters": {"type": "object"},
        "query": {"type": ["string", "null"]},
    },
}
CONNECTION = {
    "type": "object",
    "required": ["client_id", "user_id", "authenticated", "channels"],
    "properties": {
        "client_id": {"type": "string"},
        "user_id": {"type": ["string", "integer", "null"]},
        "authenticated": {"type": "boolean"},
        "channels": {"type": "array", "items": {"type": "string"}},
        "resume": {
            "type": "object",
            "required": ["token", "window"],
            "properties": {
                "token": {"type": "string"},
                "window": {"type": "number"},
            },
        },
    },
}


def _key(name: str) -> str:
    """A name as component and message keys may spell it."""
    return re.sub(r"[^\w.\-]", "_", name)


def _pointer(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


class Channel:
    """One channel's messages, and the operations on them. Its error frames have
    an event that matches ``error_pattern`` (any event, or none, without it)."""

    def __init__(
        self, name: str, title: str, description: str, error_pattern: str | None
    ) -> None:
        self.name = name
        self.ref = {"$ref": f"#/channels/{_pointer(name)}"}
        self.body: dict[str, Any] = {
            "address": None,
            "title": title,
            "description": description,
            "messages": {},
        }
        self.operations: dict[str, dict] = {}
        event = schema.event_schema(error_pattern) if error_pattern else None
        self.error = self.message(
            "error", schema.error_frame(event), "An error frame: no data, an `error`."
        )

    def message(self, key: str, payload: dict, summary: str, **extra: Any) -> dict:
        key = _key(key)
        self.body["messages"][key] = {
            "name": key,
            "summary": summary,
            "payload": payload,
            **extra,
        }
        return {"$ref": f"{self.ref['$ref']}/messages/{key}"}

    def answers(
        self,
        name: str,
        event: str,
        summary: str,
        data: dict,
        reply: dict,
        *,
        reply_event: str | None = None,
        **extra: Any,
    ) -> None:
        """The server receives ``event``, with or without a hash, and answers with
        ``reply`` (under ``reply_event``, else the same event) or an error frame.
        ``name`` is its messages' key in the channel."""
        pattern = re.escape(event)
        reply_pattern = re.escape(reply_event) if reply_event else pattern
        request = self.message(
            f"{name}.request",
            schema.request_frame(schema.event_schema(pattern), data),
            f"`{event}` request.",
            correlationId=CORRELATION,
        )
        answer = self.message(
            f"{name}.reply",
            schema.reply_frame(schema.event_schema(reply_pattern), reply),
            f"The reply to `{event}`.",
            correlationId=CORRELATION,
        )
        self.operations[_key(event)] = {
            "action": "receive",
            "channel": self.ref,
            "title": event,
            "summary": summary,
            "messages": [request],
            "reply": {"channel": self.ref, "messages": [answer, self.error]},
            **extra,
        }

    def pushes(self, name: str, event: str | None, summary: str, data: dict) -> None:
        """The server sends ``event`` (any event, with ``None``) unasked."""
        pattern = None if event is None else re.escape(event)
        payload = schema.push_frame(schema.event_schema(pattern), data)
        payload["not"] = {"required": ["request_id"]}
        push = self.message(f"{name}.push", payload, summary)
        title = event or name
        self.operations[_key(f"{title}.push")] = {
            "action": "send",
            "channel": self.ref,
            "title": title,
            "summary": summary,
            "messages": [push],
        }
        return payload


def _builtin(binding: type, action: str, row: dict, write: dict) -> tuple:
    """``(summary, data in, data out)`` of a built-in action."""
    partial = {k: v for k, v in write.items() if k != "required"}
    partial["properties"] = {"id": schema.ID, **write.get("properties", {})}
    by_id = {"type": "object", "properties": {"id": schema.ID}}
    target = {
        "type": "object",
        "properties": {
            "id": schema.ID,
            "filters": {"type": ["object", "null"]},
            "query": {"type": ["string", "null"]},
        },
    }
    page = schema.page_schema(row)
    return {
        "retrieve": ("Read one object, and watch it.", by_id, row),
        "list": ("Read a page; watch the collection.", _params(binding, False), page),
        "search": ("Search; watch the collection.", _params(binding, True), page),
        "create": ("Create an object.", write, row),
        "update": ("Update an object (partially).", partial, row),
        "save": ("Update the object `id` names, else create.", partial, SUCCESS),
        "delete": ("Delete an object.", by_id, SUCCESS),
        "subscribe": ("Watch an object or a collection.", target, SUBSCRIBED),
        "unsubscribe": (
            "Stop watching.",
            {**target, "properties": {**target["properties"], "all": {}}},
            SUBSCRIBED,
        ),
    }[action]


def _params(binding: type, search: bool) -> dict:
    return schema.list_params(binding, search=search)


def _stream(binding: type, components: dict) -> Channel:
    stream = binding.stream
    doc = (binding.__doc__ or "").strip().split("\n")[0]
    channel = Channel(
        stream,
        stream,
        f"The events `{stream}.<action>[#<hash>]`. {doc}".strip(),
        error_pattern=rf"{re.escape(stream)}\.[^.#]+",
    )
    row_key, write_key = _key(f"{stream}.row"), _key(f"{stream}.write")
    components[row_key], components[write_key] = schema.row_schemas(binding)
    row = {"$ref": f"#/components/schemas/{row_key}"}
    write = {"$ref": f"#/components/schemas/{write_key}"}
    for name, handler_name in binding.events.items():
        if name in BUILTIN_ACTIONS and handler_name == name:
            summary, data, reply = _builtin(binding, name, row, write)
        else:
            doc = (getattr(binding, handler_name).__doc__ or "").strip()
            summary = doc.split("\n")[0] or f"The custom event `{name}`."
            data, reply = schema.OBJECT, {}
        classes = event_permission_classes(binding, handler_name)
        channel.answers(
            name,
            f"{stream}.{name}",
            summary,
            data,
            reply,
            **{"x-permission-classes": [permission_name(c) for c in classes]},
        )
    if binding.model is not None:
        for action, summary, data in (
            ("retrieve", "A watched object changed or entered a collection.", row),
            ("delete", "A seen object was deleted, left, or is hidden now.", DELETED),
            ("resync", "Changes may have been missed: read again.", RESYNC),
        ):
            channel.pushes(action, f"{stream}.{action}", summary, data)
    return channel


def _connection() -> Channel:
    channel = Channel(
        "connection",
        "The connection",
        "The events of the connection itself, which name no stream.",
        error_pattern=None,
    )
    channel.pushes(
        "connection",
        "connection",
        "After the handshake and a change of user.",
        CONNECTION,
    )
    notify = channel.pushes(
        "notify", None, "A notification: `notify`, or the event it names.", {}
    )
    notify["properties"]["sender"] = {
        "type": "object",
        "description": "Who relayed it (client relays only).",
    }
    empty = {"type": "object"}
    token = {"type": "object", "properties": {"token": {"type": ["string", "null"]}}}
    position = {"type": "integer", "minimum": 0}
    resume = {
        "type": "object",
        "required": ["token", "pos"],
        "properties": {"token": {"type": "string"}, "pos": position},
    }
    resumed = {
        "type": "object",
        "required": ["resumed"],
        "properties": {
            "resumed": {"type": "boolean"},
            "token": {"type": "string"},
            "pos": position,
        },
    }
    events = [
        ("connection", "Send the connection frame again.", empty, CONNECTION, None),
        ("ping", "Keep-alive: answered with `pong`.", empty, empty, "pong"),
        ("authorize", "Change the connection's user.", token, CONNECTION, None),
        (
            "resume",
            "Take over a lost connection's subscriptions.",
            resume,
            resumed,
            None,
        ),
    ]
    if binding_settings.CLIENT_NOTIFICATIONS:
        relay = {
            "type": "object",
            "required": ["targets", "data"],
            "properties": {
                "targets": {"type": "array", "minItems": 1, "maxItems": 100},
                "data": {"type": "object"},
            },
        }
        sent = {"type": "object", "properties": {"sent": {"type": "integer"}}}
        for kind in ("users", "channels", "clients"):
            events.append((f"notify.{kind}", f"Relay to {kind}.", relay, sent, None))
    for event, summary, data, reply, reply_event in events:
        channel.answers(event, event, summary, data, reply, reply_event=reply_event)
    return channel


def document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of every registered stream's events."""
    components: dict[str, dict] = {}
    channels = [_connection(), *(_stream(b, components) for b in registry)]
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "channels-binding",
            "version": __version__,
            "description": DESCRIPTION,
        },
        "defaultContentType": "application/json",
        "channels": {channel.name: channel.body for channel in channels},
        "operations": {
            name: operation
            for channel in channels
            for name, operation in channel.operations.items()
        },
        "components": {"schemas": components},
    }
