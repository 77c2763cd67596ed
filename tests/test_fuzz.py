"""Fuzzing the websocket protocol: thousands of generated frames on one connection.

Hypothesis generates batches of frames: valid and broken JSON, wrong types in every
field, odd unicode (lone surrogates, RTL marks, emoji, NUL), deep nesting, huge
numbers, binary and empty frames, and events against every registered stream and
action (custom ones and hashes included). Every frame must be answered exactly once,
with data or an error frame whose status and code the protocol allows (a 500 only
from ``shop.Product.boom``, whose job is to raise); no reply may leak a traceback,
SQL or a path, or be unsendable as a websocket text frame (not UTF-8); the socket
stays open; and what the server holds for the connection is the same after the
second half of the run as after the first (see the main test for how memory is
measured).

How replies are matched: a frame that is a JSON object gets a unique ``request_id``
(of a JSON type the generator picks) and is sent in a batch; the batch is done when
each id has been answered once. Frames that cannot carry an id (not JSON, not an
object, binary, an id the parser cannot read, or none on purpose) are sent one at a
time, and exactly one reply is read before the next frame. Frames without a
``request_id`` that arrive meanwhile are pushes (the fuzzer's own writes are
watched): they are checked for shape and skipped.

The connection runs on an event loop of its own, driven from a synchronous
``@given`` function: each Hypothesis example is one batch sent to the same socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import math
import re
import time
import tracemalloc
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from channels_binding.bindings import BUILTIN_ACTIONS, GenericBinding
from channels_binding.events.protocol import Frame
from channels_binding.events.request import BindingRequest
from channels_binding.live.hub import Hub
from channels_binding.live.subscriptions import Subscription
from channels_binding.registry import registry
from channels_binding.testing import BindingCommunicator
from channels_binding.websocket.connection import ConnectionMixin
from tests.asgi import application
from tests.shop.models import Category, Note, Product, Tag

# Keys start from 1 in every test, whatever ran before: the generated frames aim at
# the rows' keys, and with keys that drifted (SQLite's AUTOINCREMENT) a run could
# miss every row of a stream and never reach its handlers.
pytestmark = pytest.mark.django_db(transaction=True, reset_sequences=True)

ROOT = {"BINDINGS_MODULES": ["tests.root_bindings"]}

#: Never in a reply (the generator never sends them, so no echo can contain them).
LEAKS = ("Traceback", 'File "', "SELECT ", "/work/", "site-packages")
#: The statuses and codes of SPEC section 3 a bad frame may get.
CODES = {
    400: {"invalid", "parse_error"},
    401: {"not_authenticated"},
    403: {"permission_denied"},
    404: {"not_found", "unknown_event"},
    405: {"method_not_allowed"},
    413: {"too_large"},
    429: {"throttled"},
}
#: The test binding whose handler raises: its 500 is the one allowed.
BOOM = "shop.Product.boom"
SERVER_ERROR = {"status": 500, "code": "server_error", "detail": "Server error."}
#: Pushes, and frames a connection sends by itself.
PUSH_EVENTS = {"notify", "connection", "job.step"}
PUSH = re.compile(r"(?P<stream>.+)\.(retrieve|delete)(#.*)?", re.DOTALL)

#: Keys a frame's ``data`` may carry, every one of them drawn with wrong types too.
DATA_KEYS = [
    "id", "page", "limit", "ordering", "filters", "query", "fields", "all",
    "targets", "data", "token", "a", "b", "name", "price", "description",
    "in_stock", "category", "category_id", "tags", "created", "text", "owner",
    "secret", "username", "email", "password", "is_staff", "pk", "request_id",
    "event",
]  # fmt: skip

WRITE_FIELDS = {
    "shop.Product": [
        "name", "price", "description", "in_stock", "category_id", "tags", "id",
    ],
    "shop.Category": ["name", "id"],
    "shop.Note": ["text", "owner", "id"],
    "auth.User": ["username", "email", "id"],
}  # fmt: skip

PAYLOAD_KEYS = [
    "id", "name", "price", "text", "username", "filters", "query", "ordering",
    "page", "limit", "targets", "data", "token",
]  # fmt: skip

FILTER_KEYS = [
    "in_stock", "category", "category__in", "price", "price__lt", "price__gt",
    "name", "owner", "owner__password", "category__name", "pk", "id__in",
    "text", "username", "", "price__regex", "tags__name",
]  # fmt: skip

ORDERINGS = [
    "name", "-name", "price", "-price", "created", "name,-price", " name ",
    "description", "owner__password", "category__name", "?", "-", "", "pk",
    "username", "text", "--name", "name,", ",",
]  # fmt: skip

ODD_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\u202eevil\u202c",  # right-to-left override
    "مرحبا بالعالم",  # Arabic, RTL
    "שלום",
    "😀",
    "👩‍👩‍👧‍👦",  # a ZWJ sequence
    "\ufeff",
    "e\u0301\u0301\u0301",
    "\u2028\u2029",
    "ﷺ" * 50,
    "x" * 5000,
    "%s%d{0}{}",
    "'; drop table shop_product; --",
    '"\\',
    "%_",
    "__",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "NaN",
    "Infinity",
    "1e999",
    "9" * 40,
    "-0",
    "0x10",
    "1",
    "42",
    "true",
    "null",
    "pen",
    "Pen",
]

HUGE_INTS = [
    2**31,
    -(2**31) - 1,
    2**53 + 1,
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    2**64,
    10**30,
    -(10**30),
    10**300,
]
ODD_FLOATS = [0.5, -0.0, 1e308, -1e308, 5e-324, 1.7976931348623157e308, 1e16, 3.0]

LONE_SURROGATES = ["\ud800", "\udfff", "a\ud83dz", "\udc00\ud800"]

#: Raw texts that are not one JSON object, or not JSON at all.
RAW_TEXTS = [
    "",
    " ",
    "\n",
    "null",
    "[]",
    "[1, 2]",
    "42",
    "-1e999",
    '"event"',
    "true",
    "{",
    "}",
    "{}",
    '{"event":}',
    "{'event': 'ping'}",
    '{"event": "ping",}',
    "NaN",
    '{"event": "ping", "data": NaN}',
    '{"event": "ping", "data": {"x": Infinity}}',
    '{"event": "ping", "data": {"x": -Infinity}}',
    '{"event": "shop.Product.list", "data": {"page": 1e999}}',
    '{"event": "shop.Product.list", "data": {"page": ' + "9" * 5000 + "}}",
    '\ufeff{"event": "ping"}',
    '{"event": "ping"}garbage',
    '{"event": "ping"}{"event": "ping"}',
    '{"event": "ping", "event": "connection"}',
    '{"event": "ping", "request_id": null}',
    '{"event": "ping", "request_id": 1e999}',
    '{"event": "p\\u0000ing"}',
    '{"event": "ping\\ud800"}',
    '{"event": "\\ud83d\\ude00"}',
    '{"event": "\\ud800.x#\\udfff", "data": {"\\udc00": "\\ud800"}}',
    '{"event": "shop.Product.search", "data": {"query": "\\ud800"}}',
    "\x00",
    "\u202e{}",
    '{"event": "ping", "data": {"a": "\\x"}}',
    '{"event": "ping", "data": "\\u12"}',
]


def scrub(text: str) -> str:
    """``text`` without any of the substrings that must never reach a client."""
    for leak in LEAKS:
        text = text.replace(leak, "")
    return text


# -- what a reply must look like -------------------------------------------------


def finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(text)
    return value


def no_constant(name: str) -> Any:
    raise ValueError(name)


def shallow_loads(text: str) -> Any:
    """The frame as the protocol reads it, read on a stack at least as shallow as
    the server's. The test's own stack (pytest, Hypothesis, the event loop) is
    deeper, so nesting the server reads (its worker thread starts near the
    bottom) could otherwise read as broken here, and its reply as a stray one."""
    try:
        return json.loads(text, parse_float=finite_float, parse_constant=no_constant)
    except RecursionError:
        with ThreadPoolExecutor(1) as thread:
            return thread.submit(
                json.loads, text, parse_float=finite_float, parse_constant=no_constant
            ).result()


@dataclass
class Expect:
    """What the reply to one frame must be, read off the frame as the protocol
    reads it (SPEC section 3)."""

    error_event: str | None = None  # the ``event`` of an error reply
    ok_event: str | None = None  # the ``event`` of a success reply; None: no success
    has_request_id: bool = False
    request_id: Any = None
    boom: bool = False
    unsure: bool = False  # nested so deep the server may not parse it

    @classmethod
    def of(cls, text: str | None) -> Expect:
        if text is None:
            return cls()
        try:
            obj = shallow_loads(text)
        except (ValueError, RecursionError):
            return cls()
        if not isinstance(obj, dict):
            return cls()
        expect = cls(has_request_id="request_id" in obj)
        expect.request_id = obj.get("request_id")
        event = obj.get("event")
        if not isinstance(event, str) or not event:
            return expect
        expect.error_event = event
        data = obj.get("data")
        if data is None or isinstance(data, dict):
            name, sep, tag = event.partition("#")
            expect.ok_event = ("pong" + sep + tag) if name == "ping" else event
            expect.boom = event.partition("#")[0] == BOOM
        return expect

    def is_reply(self, frame: dict) -> bool:
        """Whether ``frame`` (read while waiting for this frame's reply, in single
        mode) is the reply rather than a push."""
        if "error" in frame or "request_id" in frame:
            return True
        if self.has_request_id:  # the reply would carry it: this is a push
            return False
        return self.ok_event is not None and frame.get("event") == self.ok_event


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=True)


def check_text(text: str) -> dict:
    """A frame the server sent: sendable, JSON, leaking nothing."""
    assert isinstance(text, str), text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # pragma: no cover - reported
        pytest.fail(f"reply is not UTF-8, so no text frame can carry it: {text!a}")
    for leak in LEAKS:
        assert leak not in text, f"{leak!r} leaked in {text[:500]!a}"
    frame = json.loads(text)
    assert isinstance(frame, dict), text
    return frame


def check_push(frame: dict, streams: set[str]) -> None:
    assert "error" not in frame and "request_id" not in frame, frame
    assert set(frame) <= {"event", "data", "sender"} and "data" in frame, frame
    event = frame["event"]
    match = PUSH.fullmatch(event) if isinstance(event, str) else None
    assert event in PUSH_EVENTS or (match and match["stream"] in streams), frame


def check_reply(frame: dict, expect: Expect, stats: Counter) -> None:
    """The reply to a frame: success or an allowed error, with the right event and
    the request id echoed exactly when the frame had one that could be read."""
    if expect.has_request_id:
        assert "request_id" in frame, frame
        assert canonical(frame["request_id"]) == canonical(expect.request_id), frame
    else:
        assert "request_id" not in frame, frame
    keys = {"event", "request_id"} if expect.has_request_id else {"event"}
    if "error" in frame:
        assert set(frame) == keys | {"error"}, frame
        assert frame["event"] == expect.error_event, (frame, expect)
        error = frame["error"]
        assert set(error) == {"status", "code", "detail"}, frame
        if error["status"] == 500 and expect.boom:
            assert error == SERVER_ERROR, frame
        else:
            assert error["code"] in CODES.get(error["status"], ()), frame
        detail = error["detail"]
        if isinstance(detail, dict):
            assert detail and all(
                isinstance(key, str)
                and isinstance(value, list)
                and all(isinstance(item, str) for item in value)
                for key, value in detail.items()
            ), frame
        else:
            assert isinstance(detail, str) and detail, frame
        stats[error["status"], error["code"]] += 1
    else:
        assert set(frame) == keys | {"data"}, frame
        assert expect.ok_event is not None, (frame, expect)
        assert frame["event"] == expect.ok_event, (frame, expect)
        stats["ok", expect.ok_event.partition("#")[0].rpartition(".")[2]] += 1


# -- generated frames ------------------------------------------------------------

#: Where ``Spec.deep`` nests its lists.
DEEP = "\x00deep\x00"
#: Depths from which the server's parser may give up (its stack is deeper than
#: the test's): such frames go one at a time and may get a bare parse error.
UNSURE_DEPTH = 400
RID_FORMS = ["int", "negative", "huge", "float", "text", "list", "object"]


@dataclass
class Spec:
    """One generated frame, before its request id is chosen.

    ``obj`` is a JSON object that gets a unique request id of the type ``rid``
    names (``"absent"``: none; ``"null"``: ``null``), or ``text``/``binary`` is
    sent as it is. ``deep`` nests that many lists where ``obj`` holds ``DEEP``;
    ``cut`` truncates the JSON text.
    """

    obj: dict | None = None
    text: str | None = None
    binary: bytes | None = None
    rid: str = "int"
    rid_junk: Any = None
    rid_first: bool = False
    ascii: bool = True
    deep: int = 0
    cut: int | None = None


def request_id(form: str, number: int, junk: Any) -> Any:
    """A unique request id of some JSON type."""
    return {
        "int": number,
        "negative": -number,
        "huge": 10**30 + number,
        "float": number + 0.5,
        "text": f"r{number}-\u202e😀",
        "list": [number, junk],
        "object": {"n": number, "junk": junk},
    }[form]


@dataclass
class Pools:
    """What the fuzzer aims at: the throwaway rows' keys, the registered streams
    and their custom events, and tokens to authorize with."""

    ids: list[int]
    rows: dict[str, list[int]]  # stream: keys of its throwaway rows
    streams: list[str]
    customs: dict[str, list[str]]
    tokens: list[Any]
    tag_names: list[str]


def frames(pools: Pools) -> st.SearchStrategy[Spec]:
    """The strategy of one frame.

    Generating is most of the run's cost, so a frame takes few draws: one roll
    decides its rare twists, and strategies are built once, here."""
    text = st.one_of(
        # Any code point but surrogates, which come from LONE_SURROGATES, rarely:
        # one in a frame makes all of it a parse error, hiding the rest.
        st.text(max_size=12).map(scrub),
        st.sampled_from(ODD_TEXT),
    )
    ints = st.one_of(st.integers(-5, 300), st.sampled_from(HUGE_INTS))
    floats = st.one_of(
        st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(ODD_FLOATS)
    )
    names = st.one_of(st.sampled_from(DATA_KEYS), text)
    # Words that pass a CharField (not blank, no NUL), so that writes succeed too.
    words = st.one_of(
        st.text(st.characters(exclude_characters="\x00"), min_size=1, max_size=12)
        .map(scrub)
        .map(lambda word: word.strip() or "word"),
        st.sampled_from(["pen", "Pen", "مرحبا بالعالم", "😀", "\u202eevil\u202c"]),
    )
    junk = st.recursive(
        st.one_of(st.none(), st.booleans(), ints, floats, text),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(names, inner, max_size=3)
        ),
        max_leaves=4,
    )
    keys = st.sampled_from(pools.ids)
    ids = st.one_of(keys, keys.map(str), junk)
    filters = st.dictionaries(
        st.one_of(st.sampled_from(FILTER_KEYS), text),
        st.one_of(ids, st.lists(ids, max_size=3)),
        max_size=3,
    )
    orderings = st.sampled_from(ORDERINGS)
    # Values that are right, or nearly, for each key; any key also gets junk.
    good = {
        "id": ids,
        "pk": ids,
        "owner": ids,
        "category": ids,
        "category_id": ids,
        "page": st.one_of(st.integers(-1, 4), st.sampled_from(["2", " 1 ", "x", 1.0])),
        "limit": st.one_of(st.integers(-1, 150), st.sampled_from(["5", "0", 2.5])),
        "ordering": st.one_of(orderings, st.lists(orderings, max_size=3)),
        "filters": filters,
        "query": text,
        "tags": st.lists(st.one_of(st.sampled_from(pools.tag_names), text), max_size=3),
        "targets": st.lists(
            st.one_of(ids, st.sampled_from(["fuzz", "@self", "room.1"]), text),
            max_size=3,
        ),
        "token": st.sampled_from(pools.tokens),
        "all": st.booleans(),
        "a": ints,
        "b": ints,
        "price": st.one_of(
            floats, ints, st.sampled_from(["1.50", "-1", "1e3", "123456789.00"])
        ),
        "in_stock": st.one_of(st.booleans(), st.sampled_from(["true", "no", 2])),
        "created": st.sampled_from(["2020-01-01T00:00:00Z", "yesterday", 0]),
        "name": words,
        "text": words,
        "username": words,
        "description": words,
        "email": st.sampled_from(["a@example.com", "not an email", ""]),
    }
    values = {name: st.one_of(value, junk) for name, value in good.items()}
    other_value = st.one_of(text, junk)
    streams = st.sampled_from(pools.streams)
    odd_streams = st.one_of(
        st.sampled_from(["", "shop", "shop.Nope", "auth", "shop.product"]), text
    )
    actions = {
        stream: st.sampled_from([*BUILTIN_ACTIONS, *pools.customs.get(stream, ())])
        for stream in pools.streams
    }
    odd_actions = st.one_of(
        st.sampled_from(["", "get_queryset", "__init__", "run", "events", "LIST"]),
        text,
    )
    tags = st.one_of(
        keys.map(str), st.sampled_from(["", "sidebar", "#", "42abc", "9" * 30]), text
    )
    connection_events = st.sampled_from(list(ConnectionMixin.connection_events))
    # Writes that mostly validate, so the write paths (and their pushes) are run
    # often: fields right for the stream, and a key of its own rows.
    fields = {
        "name": words,
        "text": words,
        "username": words,
        "description": words,
        "price": st.one_of(st.integers(0, 999), st.sampled_from(["1.50", "0.99"])),
        "in_stock": st.booleans(),
        "category_id": st.sampled_from(pools.rows["shop.Category"]),
        "tags": st.lists(st.sampled_from(pools.tag_names), max_size=2, unique=True),
        "email": st.sampled_from(["a@example.com", ""]),
        "owner": keys,  # read-only on notes: must be ignored
        "id": keys,  # read-only
    }
    writes = st.sampled_from(
        ["create"] * 3 + ["update"] * 4 + ["save"] * 3 + ["delete"]
    )
    writable = st.sampled_from(sorted(set(pools.rows) & set(WRITE_FIELDS)))

    @st.composite
    def write(draw, obj: dict) -> None:
        stream, action = draw(writable), draw(writes)
        obj["event"] = f"{stream}.{action}"
        obj["data"] = {
            name: draw(fields[name])
            for name in draw(
                st.lists(st.sampled_from(WRITE_FIELDS[stream]), unique=True)
            )
        }
        if action != "create":
            obj["data"]["id"] = draw(st.sampled_from(pools.rows[stream]))

    roll = st.integers(0, 10**9)

    # The keys a handler reads, more often than the others.
    payload = st.one_of(st.sampled_from(PAYLOAD_KEYS), names)

    @st.composite
    def data(draw) -> dict:
        chosen = draw(st.lists(payload, max_size=4, unique=True))
        return {name: draw(values.get(name, other_value)) for name in chosen}

    @st.composite
    def binding_event(draw, dice: int) -> str:
        # 85% a registered stream, 85% one of its events, 40% a hash.
        stream = draw(streams if dice % 20 < 17 else odd_streams)
        dice //= 20
        known = dice % 20 < 17 and stream in actions
        action = draw(actions[stream] if known else odd_actions)
        name = f"{stream}.{action}" if stream else action
        return f"{name}#{draw(tags)}" if dice // 20 % 5 < 2 else name

    @st.composite
    def json_frame(draw) -> Spec:
        # Rare twists happen on a nonzero residue: Hypothesis likes small rolls.
        dice = draw(roll)
        obj: dict[str, Any] = {}
        kind, dice = dice % 25, dice // 25
        if kind < 15:
            obj["event"] = draw(binding_event(draw(roll)))
        elif kind < 18:
            draw(write(obj))
        elif kind < 23:
            obj["event"] = draw(connection_events)
        elif kind == 23:  # a wrong event, or none
            obj["event"] = draw(junk)
        shape, dice = dice % 12, dice // 12
        if "data" in obj:
            pass
        elif shape < 10:
            obj["data"] = draw(data())
        elif shape == 10:
            obj["data"] = draw(junk)
        if dice % 10 == 3:
            obj[draw(text)] = draw(junk)  # an unknown top-level key
        dice //= 10
        if dice % 40 == 17:
            # A lone surrogate somewhere: JSON can escape one, UTF-8 cannot hold it.
            lone = draw(st.sampled_from(LONE_SURROGATES))
            if isinstance(obj.get("event"), str) and draw(st.booleans()):
                obj["event"] += lone
            elif isinstance(obj.get("data"), dict):
                obj["data"][lone] = lone
            else:
                obj[lone] = lone
        dice //= 40
        deep = 0
        if dice % 20 == 9:
            deep = draw(st.sampled_from([20, 200, 500, 800, 2000, 100_000]))
            if isinstance(obj.get("data"), dict):
                obj["data"][draw(st.sampled_from(["filters", "query", "x"]))] = DEEP
            else:
                obj["data"] = DEEP
        dice //= 20
        rid = RID_FORMS[dice % 9] if dice % 9 < len(RID_FORMS) else "absent"
        rid = "null" if rid == "absent" and dice % 18 < 9 else rid
        dice //= 18
        return Spec(
            obj=obj,
            rid=rid,
            rid_junk=draw(junk) if rid in ("list", "object") else None,
            rid_first=dice % 2 == 0,
            ascii=dice // 2 % 2 == 0,
            deep=deep,
            cut=draw(st.integers(0, 150)) if dice // 4 % 30 == 11 else None,
        )

    raw = st.one_of(st.sampled_from(RAW_TEXTS), text).map(lambda t: Spec(text=t))
    binary = st.one_of(
        st.binary(max_size=40),
        st.sampled_from([b"", b'{"event": "ping"}', "😀".encode(), b"\xff\xfe"]),
    ).map(lambda b: Spec(binary=b))

    @st.composite
    def frame(draw) -> Spec:
        # Weighted by hand: ``one_of`` would give each kind the same share.
        kind = draw(st.integers(0, 39))
        return draw(raw if kind in (1, 2) else binary if kind == 3 else json_frame())

    return frame()


# -- the connection under fuzz ----------------------------------------------------


@dataclass
class Sent:
    text: str | None
    binary: bytes | None
    expect: Expect
    key: str | None  # the canonical request id of a batch frame; None: one at a time


class Tally(logging.Handler):
    """Keeps each log record's logger, level and message (never its traceback,
    which would keep every failed request's frames alive)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.name, record.levelno, record.getMessage()))


class Fuzzer:
    """One connection, the frames sent on it, and every check on what comes back."""

    TIMEOUT = 10

    def __init__(self, path: str, user: Any, token: str | None) -> None:
        self.client = BindingCommunicator(application, path)
        if user is not None:
            self.client.scope["user"] = user
        self.token = token
        self.number = 0
        self.sent = 0  # generated frames
        self.pushes = 0
        self.stats: Counter = Counter()
        self.pending: dict[str, Expect] = {}
        self.streams = {binding.stream for binding in registry}
        #: The last frames sent and received, shown when a check fails.
        self.history: deque[str] = deque(maxlen=40)
        self.failure: str | None = None

    async def open(self) -> None:
        connected, _ = await self.client.connect()
        assert connected
        self.client_id = self.client.connection["client_id"]
        self.authenticated = self.client.connection["authenticated"]
        self.hub = Hub.current()
        (self.consumer,) = self.hub.members

    def render(self, spec: Spec) -> Sent:
        if spec.binary is not None:
            return Sent(None, spec.binary, Expect(), None)
        if spec.text is not None:
            return Sent(spec.text, None, Expect.of(spec.text), None)
        obj = dict(spec.obj)
        data = obj.get("data")
        if isinstance(data, dict) and isinstance(data.get("targets"), list):
            targets = [self.client_id if t == "@self" else t for t in data["targets"]]
            obj["data"] = {**data, "targets": targets}
        if spec.rid != "absent":
            self.number += 1
            rid = None
            if spec.rid != "null":
                rid = request_id(spec.rid, self.number, spec.rid_junk)
            rest = {k: v for k, v in obj.items() if k != "request_id"}
            obj = (
                {"request_id": rid, **rest}
                if spec.rid_first
                else {**rest, "request_id": rid}
            )
        text = json.dumps(obj, ensure_ascii=spec.ascii)
        if not spec.ascii and not utf8(text):
            # A real client's text frame is UTF-8: lone surrogates travel escaped.
            text = json.dumps(obj)
        if spec.deep:
            text = text.replace(json.dumps(DEEP), "[" * spec.deep + "]" * spec.deep)
        if spec.cut is not None:
            text = text[: spec.cut]
        expect = Expect.of(text)
        batch = (
            spec.rid not in ("absent", "null")
            and spec.cut is None
            and spec.deep < UNSURE_DEPTH
        )
        expect.unsure = spec.deep >= UNSURE_DEPTH
        return Sent(text, None, expect, canonical(expect.request_id) if batch else None)

    async def send(self, sent: Sent) -> None:
        # Not ``send_to``, which refuses empty frames.
        if sent.binary is not None:
            message = {"type": "websocket.receive", "bytes": sent.binary}
        else:
            message = {"type": "websocket.receive", "text": sent.text}
        self.history.append(f"sent {ascii(sent.text or sent.binary)[:300]}")
        await self.client.send_input(message)

    async def receive(self) -> dict:
        text = await self.client.receive_from(self.TIMEOUT)
        self.history.append(f"got  {ascii(text)[:300]}")
        return check_text(text)

    def dispatch(self, frame: dict, single: Expect | None = None) -> bool:
        """Account for one frame read; True when it is ``single``'s reply."""
        data = frame.get("data")
        if frame.get("event") in ("connection", "authorize") and isinstance(data, dict):
            self.authenticated = data.get("authenticated")
        if "request_id" in frame:
            key = canonical(frame["request_id"])
            if key in self.pending:
                check_reply(frame, self.pending.pop(key), self.stats)
                return False
        if single is not None and single.is_reply(frame):
            if single.unsure and "request_id" not in frame:
                # The server's parser gave up on the nesting before reading the id.
                if frame.get("error", {}).get("code") == "parse_error":
                    single = Expect()
            check_reply(frame, single, self.stats)
            return True
        assert "request_id" not in frame, f"a second reply, or a stray one: {frame}"
        check_push(frame, self.streams)
        self.pushes += 1
        return False

    async def run(self, specs: list[Spec]) -> None:
        """Send a batch: frames with a readable request id without waiting, the
        others one at a time; then read until every id is answered."""
        if self.failure is None:
            try:
                await self._run(specs)
            except (AssertionError, TimeoutError) as exc:
                self.failure = f"{exc!r}\nthe last frames, oldest first:\n" + "\n".join(
                    self.history
                )
        if self.failure is not None:
            # Raised again, unchanged, when Hypothesis replays the batch: the
            # connection's state is past it, so a replay would fail differently.
            raise AssertionError(self.failure)

    async def _run(self, specs: list[Spec]) -> None:
        for spec in specs:
            sent = self.render(spec)
            self.sent += 1
            await self.send(sent)
            if sent.key is None:
                while not self.dispatch(await self.receive(), sent.expect):
                    pass
            else:
                self.pending[sent.key] = sent.expect
        while self.pending:
            self.dispatch(await self.receive())
        if self.token is not None and not self.authenticated:
            # Some ``authorize`` switched to anonymous: most frames would be 401s.
            reply = await self.request("authorize", {"token": self.token})
            assert reply["data"]["authenticated"], reply

    async def request(self, event: str, data: dict | None = None) -> dict:
        """A well-formed request outside the generated frames; its reply."""
        self.number += 1
        frame = {"event": event, "data": data or {}, "request_id": self.number}
        await self.send(
            Sent(json.dumps(frame), None, Expect.of(json.dumps(frame)), None)
        )
        while True:
            reply = await self.receive()
            if reply.get("request_id") == self.number:
                return reply
            self.dispatch(reply)

    async def tidy(self) -> None:
        """What a well-behaved client does now and then: authorize again (the
        fuzzer may have switched to anonymous) and drop every subscription. Then
        read until nothing more comes."""
        if self.token is not None:
            reply = await self.request("authorize", {"token": self.token})
            assert reply["data"]["authenticated"], reply
        for binding in registry:
            if binding.model is not None and "unsubscribe" in binding.events:
                reply = await self.request(
                    f"{binding.stream}.unsubscribe", {"all": True}
                )
                assert reply.get("data") == {"subscribed": False} or reply["error"][
                    "status"
                ] in (401, 403), reply
        assert (await self.request("ping"))["event"] == "pong"
        while not await self.client.receive_nothing(0.05):
            self.dispatch(await self.receive())

    def state(self) -> dict[str, int]:
        """The sizes of what the server keeps for this connection."""
        return {
            "tasks": len(getattr(self.consumer, "_tasks", ())),
            # Those a client can drop: shop.Tag answers no unsubscribe, yet its
            # retrieve and list auto-subscribe (they stay until disconnect).
            "subscriptions": sum(
                map(droppable, self.hub.index.for_consumer(self.consumer))
            ),
            "hub members": len(self.hub.members),
            "pending changes": len(self.hub.pending),
            "pending notices": len(self.hub.notices),
            **live_objects(),
        }


def live_objects() -> dict[str, int]:
    """How many objects a request makes are still alive: none may pile up."""
    gc.collect()
    kinds = {
        "live tasks": asyncio.Task,
        "live requests": BindingRequest,
        "live bindings": GenericBinding,
        "live frames": Frame,
        "live subscriptions": Subscription,
    }
    counts = dict.fromkeys(kinds, 0)
    names: dict[type, str | None] = {}  # type() is cheap, and leaves lazy objects be
    for obj in gc.get_objects():
        cls = type(obj)
        if cls not in names:
            names[cls] = next((n for n, k in kinds.items() if issubclass(cls, k)), None)
        if names[cls] is not None and droppable(obj):
            counts[names[cls]] += 1
    return counts


def droppable(obj: Any) -> bool:
    """False for a subscription its client cannot drop (see ``Fuzzer.state``)."""
    if type(obj) is not Subscription or obj.stream not in registry:
        return True
    return "unsubscribe" in registry.get(obj.stream).events


def utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# -- running it ---------------------------------------------------------------------

#: Frames per Hypothesis example; well under the consumer's backlog
#: (``MAX_CONCURRENT_REQUESTS * (1 + BACKLOG_FACTOR)``), so nothing is a 429.
BATCH = 10
#: Every this many batches the client tidies up (see :meth:`Fuzzer.tidy`).
TIDY_EVERY = 20
#: Tracing allocations makes everything several times slower, so only the last
#: this many batches of each half of the main run are traced (TRACED_FRAMES deep).
WINDOW = 50
TRACED_FRAMES = 4
#: What the server may keep of what it allocated while answering a traced window;
#: see ``test_one_connection_survives_ten_thousand_frames``.
MEMORY_BOUND = 256 * 1024
#: Allocations that are the test's own, not the server's.
TEST_SIDE = [
    tracemalloc.Filter(False, pattern, all_frames=True)
    for pattern in (
        __file__,
        "*/hypothesis/*",
        "*/_pytest/*",
        "*/pluggy/*",
        tracemalloc.__file__,
        "<frozen importlib._bootstrap*>",
    )
]


def make_rows() -> tuple[Any, Any, str, Pools]:
    """The fuzzer's user, another user whose rows it must never touch, and the
    pools of keys and events to aim at. The users' keys are far from any key the
    fuzzer sends, so it can delete throwaway users but never these two."""
    users = get_user_model().objects
    fuzzer = users.create_user("fuzzer", "fuzzer@example.com", "pw", id=1_000_000)
    bob = users.create_user("bob", "bob@example.com", "pw", id=1_000_001)
    throwaway = [
        users.create_user(f"user{n}", f"u{n}@example.com", "pw") for n in (1, 2, 3)
    ]
    categories = [Category.objects.create(name=n) for n in ("Office", "Garden")]
    tags = [Tag.objects.create(name=n) for n in ("blue", "red", "green")]
    for n in range(6):
        product = Product.objects.create(
            name=f"product {n}", price=n, category=categories[n % 2]
        )
        product.tags.set(tags[: n % 3])
    for owner in (fuzzer, bob):
        for n in range(3):
            Note.objects.create(owner=owner, text=f"{owner.username} note {n}")
    rows = {
        f"shop.{model.__name__}": sorted(model.objects.values_list("pk", flat=True))
        for model in (Category, Tag, Product, Note)
    }
    rows["auth.User"] = [user.pk for user in throwaway]
    keys = {key for keys in rows.values() for key in keys} | {0, -1, 999_999}
    token = Token.objects.create(user=fuzzer).key
    pools = Pools(
        ids=sorted(keys),
        rows=rows,
        streams=[binding.stream for binding in registry],
        customs={
            binding.stream: [e for e in binding.events if e not in BUILTIN_ACTIONS]
            for binding in registry
        },
        tokens=["", None, "nope", 42, ["x"], {"token": "x"}, "Token abc", "x" * 300],
        tag_names=[tag.name for tag in tags],
    )
    return fuzzer, bob, token, pools


def untouchable(bob) -> list:
    """Rows the fuzzer's user may not see, hence must never change."""
    return sorted(Note.objects.filter(owner=bob).values_list("pk", "text", "secret"))


@contextlib.contextmanager
def tallied_logs():
    """Count warnings and errors logged during the run. ``channels_binding``
    stops propagating meanwhile, so pytest's log capture keeps no traceback (and
    with it no request's frames) alive, which would read as a leak."""
    tally = Tally()
    logger, root = logging.getLogger("channels_binding"), logging.getLogger()
    propagate, logger.propagate = logger.propagate, False
    logger.addHandler(tally)
    root.addHandler(tally)
    try:
        yield tally
    finally:
        root.removeHandler(tally)
        logger.removeHandler(tally)
        logger.propagate = propagate


def traced_memory() -> tuple[int, tracemalloc.Snapshot]:
    """The bytes still held of what was allocated since tracing started, except
    the test's own allocations."""
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces(TEST_SIDE)
    return sum(trace.size for trace in snapshot.traces), snapshot


def fuzz(path, user, token, pools, batches, *, measure=False) -> tuple[Fuzzer, dict]:
    """Send ``batches`` generated batches on one connection; return the fuzzer and
    what the server holds for it after each half of the run.

    With ``measure``, the last ``WINDOW`` batches of each half are generated
    first and then sent with allocations traced (see ``traced_memory``)."""
    loop = asyncio.new_event_loop()
    loop_errors: list = []
    loop.set_exception_handler(lambda loop, context: loop_errors.append(context))
    fuzzer = Fuzzer(path, user, token)
    halves: dict[str, dict] = {}
    ends = {batches // 2: "first half", batches: "second half"}
    held: list[list[Spec]] = []
    done = 0

    def run(specs: list[Spec]) -> None:
        loop.run_until_complete(fuzzer.run(specs))

    def checkpoint(name: str) -> None:
        loop.run_until_complete(fuzzer.tidy())
        loop.run_until_complete(asyncio.sleep(0))  # done callbacks of the last tasks
        halves[name] = fuzzer.state()
        if tracemalloc.is_tracing():
            halves[name]["retained"], halves[name]["snapshot"] = traced_memory()
            tracemalloc.stop()

    @settings(
        derandomize=True,
        max_examples=batches,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(frames(pools), min_size=BATCH, max_size=BATCH))
    def one_batch(specs: list[Spec]) -> None:
        nonlocal done
        done += 1
        end = next((end for end in ends if end - WINDOW < done <= end), None)
        if not measure or end is None:
            run(specs)
        else:
            # Generating is traced too if it happens meanwhile: hold the window's
            # batches until the last one is generated, then send them all.
            held.append(specs)
            if done < end:
                return
            loop.run_until_complete(fuzzer.tidy())
            gc.collect()
            tracemalloc.start(TRACED_FRAMES)
            for batch in held:
                run(batch)
            held.clear()
        if done in ends:
            checkpoint(ends[done])
        elif done % TIDY_EVERY == 0:
            loop.run_until_complete(fuzzer.tidy())

    try:
        loop.run_until_complete(fuzzer.open())
        one_batch()
        # The socket is still open and answering.
        pong = loop.run_until_complete(fuzzer.request("ping"))
        assert pong == {"event": "pong", "data": {}, "request_id": fuzzer.number}
        loop.run_until_complete(fuzzer.client.disconnect())
    finally:
        tracemalloc.stop()
        future = fuzzer.client.future
        if not future.done():  # a check failed: stop the application quietly
            future.cancel()
            with contextlib.suppress(BaseException):
                loop.run_until_complete(future)
        loop.close()
    assert loop_errors == []
    assert done == batches
    return fuzzer, halves


def assert_answered(fuzzer: Fuzzer, tally: Tally) -> None:
    """Every frame got its reply, and the only errors logged are the deliberate
    ones of ``shop.Product.boom``."""
    assert fuzzer.pending == {}
    booms = fuzzer.stats[500, "server_error"]
    assert (
        tally.records
        == [("channels_binding", logging.ERROR, "Error while handling an event")]
        * booms
    )


def test_one_connection_survives_ten_thousand_frames():
    """The main run: an authenticated user (writes reachable, relays enabled and a
    joined channel, so ``notify.*`` get past "unknown event"), 10,000 frames.

    Memory. After each half, the client drops its subscriptions and the socket is
    drained; then what the server holds for the connection must be the same after
    the second half as after the first (tasks, subscriptions, hub queues, and the
    live count of tasks, requests, bindings, frames and subscriptions in the whole
    process), so nothing accumulates per frame.

    Bytes. Tracing every allocation makes the run several times slower, so the
    last 500 frames of each half are generated first, then sent with tracemalloc
    on; what the server still holds of what it allocated for them (the test's own
    allocations excluded) must stay under 256 KiB, half a KiB per frame. The
    floor is not zero: CPython's type attribute cache keeps up to 4096 attribute
    names alive (Django's compiler builds ``"as_" + vendor`` per query, Channels
    ``"websocket_receive"`` per message), some 40-60 KiB per window here and at
    most ~240 KiB ever. Anything kept per frame (a reply, a request and its
    binding, a task, a log record with its traceback) costs more than half a KiB,
    so 500 of them pass the bound. The two windows' figures print with ``-s``.
    """
    fuzzer_user, bob, token, pools = make_rows()
    pools.tokens.append(token)  # authorize may switch back to the fuzzer's user
    before = untouchable(bob)
    started = time.monotonic()
    with (
        override_settings(CHANNELS_BINDING={**ROOT, "CLIENT_NOTIFICATIONS": True}),
        tallied_logs() as tally,
    ):
        fuzzer, halves = fuzz(
            "/ws/?channel=fuzz",
            fuzzer_user,
            token,
            pools,
            batches=1000,
            measure=True,
        )
    elapsed = time.monotonic() - started
    assert fuzzer.sent >= 10_000
    assert_answered(fuzzer, tally)
    assert untouchable(bob) == before
    assert get_user_model().objects.filter(pk__in=[fuzzer_user.pk, bob.pk]).count() == 2

    first, second = halves["first half"], halves["second half"]
    kept = [first.pop("retained"), second.pop("retained")]
    top = second["snapshot"].statistics("traceback")[:5]
    first.pop("snapshot")
    second.pop("snapshot")
    print(
        f"\n{fuzzer.sent} frames, {fuzzer.pushes} pushes in {elapsed:.1f}s; "
        f"memory kept of each traced window: {kept} bytes; {dict(fuzzer.stats)}"
    )
    assert first == second
    assert second["tasks"] == 0 and second["subscriptions"] == 0
    assert max(kept) < MEMORY_BOUND, "\n\n".join(
        f"{stat}\n" + "\n".join(stat.traceback.format()) for stat in top
    )

    # The fuzzer reached the handlers, not only the parser.
    reached = set(fuzzer.stats)
    for action in [*BUILTIN_ACTIONS, "pong", "connection", "authorize"]:
        assert ("ok", action) in reached, action
    for status in [
        (400, "invalid"),
        (400, "parse_error"),
        (401, "not_authenticated"),
        (403, "permission_denied"),
        (404, "not_found"),
        (404, "unknown_event"),
        (405, "method_not_allowed"),
        (500, "server_error"),  # shop.Product.boom
    ]:
        assert status in reached, status


@pytest.mark.parametrize("path", ["/ws/", "/ws/sync/"])
def test_anonymous_and_sync_connections_survive_fuzzing(path):
    """Smaller runs: an anonymous client on the async consumer, and an
    authenticated one on the sync consumer, with default settings (relays are
    unknown events)."""
    fuzzer_user, bob, _, pools = make_rows()
    anonymous = path == "/ws/"
    before = untouchable(bob)
    with tallied_logs() as tally:
        fuzzer, halves = fuzz(
            path,
            None if anonymous else fuzzer_user,
            None,
            pools,
            batches=100,
        )
    assert fuzzer.sent >= 1000
    assert_answered(fuzzer, tally)
    assert untouchable(bob) == before
    assert halves["first half"] == halves["second half"]
    if anonymous:
        writes = ("create", "update", "save", "delete")
        assert not any(("ok", action) in fuzzer.stats for action in writes)
        assert (401, "not_authenticated") in fuzzer.stats


# -- what the fuzzer found, pinned -------------------------------------------------


@pytest.mark.parametrize(
    "text, detail",
    [
        # A lone surrogate reached SQLite's UTF-8 encoder: a 500.
        (
            '{"event": "shop.Product.search", "data": {"query": "\\ud800"}, '
            '"request_id": 1}',
            None,
        ),
        # ... or was echoed back in a reply no text frame can carry.
        ('{"event": "shop.Product.list#\\udfff", "request_id": 1}', None),
        # An integer no column holds, on a foreign key: OverflowError, a 500.
        (
            '{"event": "shop.Product.list", "data": {"filters": {"category": '
            + "9" * 30
            + '}}, "request_id": 1}',
            {"category": ["Number out of range."]},
        ),
        (
            '{"event": "shop.Product.list", "data": {"filters": {"category__in": [1, '
            + str(2**63)
            + ']}}, "request_id": 1}',
            {"category__in": ["Number out of range."]},
        ),
        # The ORM reads "--name" as a field named "-name": FieldError, a 500.
        (
            '{"event": "shop.Product.list", "data": {"ordering": "--name"}, '
            '"request_id": 1}',
            {
                "ordering": [
                    "Ordering by '-name' is not allowed. Allowed: created, name, price."
                ]
            },
        ),
    ],
    ids=[
        "surrogate in a query",
        "surrogate in a hash",
        "huge key",
        "huge key in",
        "double minus",
    ],
)
async def test_what_fuzzing_found(communicator, user, text, detail):
    async with communicator(user) as client:
        await client.send_to(text_data=text)
        reply = check_text(await client.receive_from())
    expect = Expect.of(text)
    assert reply["request_id"] == 1
    assert reply["event"] == expect.error_event
    assert reply["error"]["status"] == 400, reply
    if detail is None:
        assert reply["error"]["code"] == "parse_error"
        assert "surrogate" in reply["error"]["detail"]
    else:
        assert reply["error"]["detail"] == detail


def test_a_lone_surrogate_over_http_is_a_400(user):
    client = APIClient()
    client.force_authenticate(user)
    for path in ("/api/events/", "/api/shop/Category/"):
        body = {"event": "shop.Category.create", "data": {"name": "\ud800"}}
        if path != "/api/events/":
            body = body["data"]
        text = json.dumps(body)  # ASCII: the surrogate travels as its escape
        response = client.generic("POST", path, text, content_type="application/json")
        assert response.status_code == 400, response.content
        assert response.json()["error"]["code"] == "parse_error"
    assert not Category.objects.exists()


async def test_a_taken_username_is_a_400_not_a_500(communicator, user):
    """The test project's user serializer declared ``username`` and so lost the
    model's uniqueness check: a taken name was an IntegrityError (500)."""
    async with communicator(user) as client:
        reply = await client.request("auth.User.create", {"username": "alice"})
    assert reply["error"]["status"] == 400
    assert list(reply["error"]["detail"]) == ["username"]
