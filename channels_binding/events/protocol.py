"""The wire format: parsing client frames and building reply, error and push frames.

Every websocket text frame is one JSON object. This module knows nothing about
bindings or consumers; both transports use it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from rest_framework.utils.encoders import JSONEncoder

from ..exceptions import FrameTooLarge, ParseError, error_payload

_encoder = JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_ascii_encoder = JSONEncoder(ensure_ascii=True, separators=(",", ":"))

#: A UTF-16 surrogate code point. JSON's ``\uD800`` escapes can spell one alone,
#: but UTF-8 cannot: no text frame, database string or log line can hold it.
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
LONE_SURROGATE = (
    "Strings must be valid Unicode: a lone surrogate escape (\\ud800 to "
    "\\udfff) is not allowed."
)

NO_DATA: dict[str, Any] = {}

#: Events that address the websocket connection itself rather than a binding
#: (answered by :class:`.websocket.connection.ConnectionMixin`; 404 over HTTP).
CONNECTION_EVENTS = frozenset(
    {"ping", "connection", "authorize", "resume"}
    | {"notify.users", "notify.channels", "notify.clients"}
)


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError("number out of range")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Made once: ``json.loads`` with hooks builds a decoder per call.
_decoder = json.JSONDecoder(parse_float=_finite_float, parse_constant=_no_constant)


@dataclass(frozen=True)
class Frame:
    """One parsed client frame."""

    event: str
    data: dict[str, Any]
    request_id: Any = None
    has_request_id: bool = False

    @property
    def name(self) -> str:
        """The event without its ``#hash``."""
        return self.event.partition("#")[0]


@dataclass(frozen=True)
class Event:
    """An event name split into ``<stream>.<action>#<hash>``."""

    name: str
    stream: str
    action: str
    hash: str | None

    @classmethod
    def parse(cls, name: str) -> Event:
        base, sep, tag = name.partition("#")
        stream, _, action = base.rpartition(".")
        return cls(name=name, stream=stream, action=action, hash=tag if sep else None)

    @property
    def base(self) -> str:
        """The event without its hash."""
        return f"{self.stream}.{self.action}" if self.stream else self.action


class BadFrame(Exception):
    """A frame that cannot be answered normally; carries what could be salvaged."""

    def __init__(self, exc: Exception, event: str | None = None, frame: Any = None):
        super().__init__(str(exc))
        self.exc = exc
        self.event = event
        self.frame = frame


def loads(text: str) -> Any:
    """JSON text as the protocol reads it: no ``NaN``/``Infinity``, no number
    that overflows a float. Raises ``ValueError`` or ``RecursionError``."""
    if isinstance(text, str):
        return _decoder.decode(text)
    return json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)


def parse_frame(text: str | None, bytes_data: bytes | None = None, *, max_bytes: int):
    """Parse one websocket message into a :class:`Frame`, or raise :class:`BadFrame`.

    The error carries the event and request id when they could be read, so the
    error frame can echo them.
    """
    if text is None:
        size = len(bytes_data or b"")
        if size > max_bytes:
            raise BadFrame(FrameTooLarge())
        raise BadFrame(ParseError("Binary frames are not supported: send JSON text."))
    # len() counts characters, which is at most the UTF-8 byte count: encode only
    # when the character count alone cannot decide.
    if len(text) > max_bytes or (
        len(text) * 4 > max_bytes and len(text.encode("utf-8")) > max_bytes
    ):
        raise BadFrame(FrameTooLarge(f"Frame larger than {max_bytes} bytes."))
    try:
        obj = loads(text)
    except (ValueError, RecursionError):
        raise BadFrame(ParseError("Frame is not valid JSON.")) from None
    if not isinstance(obj, dict):
        raise BadFrame(ParseError("Frame must be a JSON object."))
    event = obj.get("event")
    if not isinstance(event, str) or not event:
        raise BadFrame(ParseError('Frame needs an "event" string.'), frame=obj)
    data = obj.get("data", NO_DATA)
    if data is None:
        data = NO_DATA
    if not isinstance(data, dict):
        raise BadFrame(ParseError('"data" must be a JSON object.'), event, obj)
    if has_lone_surrogate(text, obj):
        raise BadFrame(ParseError(LONE_SURROGATE), event, obj)
    return Frame(event, data, obj.get("request_id"), "request_id" in obj)


def has_lone_surrogate(text: str, value: Any) -> bool:
    """Whether ``value``, parsed from the JSON ``text``, holds a string with a lone
    surrogate. Such a string would fail later, wherever it is encoded as UTF-8 (a
    database query, a reply echoing it): it is refused at the door instead. Only
    a text with a surrogate escape (or, from in-process callers, a raw surrogate)
    is searched."""
    if not text.isascii() and _SURROGATE.search(text):
        return True
    if not _SURROGATE_ESCAPE.search(text):
        return False
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def reply(event: str | None, data: Any, frame: Frame | dict | None = None) -> dict:
    """A success reply (or, with no ``frame``, a push)."""
    message: dict[str, Any] = {"event": event, "data": data}
    _echo_request_id(message, frame)
    return message


def error(event: str | None, exc: BaseException, frame: Frame | dict | None = None):
    """An error frame ``{"event", "error": {"status", "code", "detail"}}``."""
    message: dict[str, Any] = {"event": event, "error": error_payload(exc)}
    _echo_request_id(message, frame)
    return message


def _echo_request_id(message: dict, frame: Frame | dict | None) -> None:
    if isinstance(frame, Frame):
        if frame.has_request_id:
            message["request_id"] = frame.request_id
    elif isinstance(frame, dict) and "request_id" in frame:
        message["request_id"] = frame["request_id"]


def encode(message: Any) -> str:
    """JSON text of a frame; understands dates, decimals, UUIDs and lazy strings.

    The text is always valid UTF-8: a lone surrogate (echoed from a refused frame,
    or returned by a handler) is sent as its ``\\uXXXX`` escape."""
    text = _encoder.encode(message)
    if not text.isascii() and _SURROGATE.search(text):
        return _ascii_encoder.encode(message)
    return text


def notification(data: Any, sender: dict | None = None) -> str:
    """The JSON text of a notification of ``data``: ``{"event": "notify", "data":
    data}``, or ``data``'s own ``event`` with ``data["data"]`` (or the rest of
    ``data``). ``sender`` is added for relays."""
    if isinstance(data, dict) and isinstance(data.get("event"), str):
        payload = (
            data["data"]
            if "data" in data
            else {key: value for key, value in data.items() if key != "event"}
        )
        message: dict[str, Any] = {"event": data["event"], "data": payload}
    else:
        message = {"event": "notify", "data": data}
    if sender is not None:
        message["sender"] = sender
    return encode(message)
