"""Per-connection limits: ``THROTTLE_RATES`` (429 frames) and
``MAX_CONCURRENT_REQUESTS`` (handlers in flight), over a websocket.

Minute-long windows are never waited for: a throttled frame's detail says how long
to wait, and recovery is shown by moving the throttle's own clock.
"""

import asyncio
import re

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from rest_framework.permissions import AllowAny

from channels_binding.bindings import AsyncBinding, bind
from channels_binding.registry import registry
from channels_binding.websocket import throttling
from channels_binding.websocket.throttling import ConnectionThrottle, parse_rate
from tests.shop.models import Category

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = {"BINDINGS_MODULES": ["tests.root_bindings"]}
PATHS = ["/ws/", "/ws/sync/"]
NOT_GIVEN = object()
THROTTLED = re.compile(
    r"Request was throttled\. Expected available in (\d+) seconds?\."
)


def limits(**settings):
    return override_settings(CHANNELS_BINDING={**ROOT, **settings})


def assert_throttled(frame, event, *, request_id=NOT_GIVEN, wait=None):
    """``frame`` is exactly a 429 for ``event`` whose detail announces ``wait``
    seconds (by default: about a minute, the rest of a window just begun)."""
    expected_keys = {"event", "error"}
    if request_id is not NOT_GIVEN:
        expected_keys.add("request_id")
        assert frame.get("request_id") == request_id, frame
    assert set(frame) == expected_keys, frame
    assert frame["event"] == event, frame
    error = frame["error"]
    assert (error["status"], error["code"]) == (429, "throttled"), frame
    match = THROTTLED.fullmatch(error["detail"])
    assert match, frame
    if wait is None:
        assert 58 <= int(match[1]) <= 60, frame
    else:
        assert int(match[1]) == wait, frame


def pong(request_id):
    return {"event": "pong", "data": {}, "request_id": request_id}


class Clock:
    """Stands in for the ``time`` module inside
    :mod:`channels_binding.websocket.throttling` only, so a window can pass
    without waiting for it."""

    def __init__(self, now=1000.0):
        self.now = now

    def monotonic(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(throttling, "time", fake)
    return fake


# -- THROTTLE_RATES as one rate --------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
async def test_sixth_frame_in_a_minute_is_throttled(communicator, path):
    with limits(THROTTLE_RATES="5/minute"):
        async with communicator(path=path) as client, communicator(path=path) as other:
            replies = [await client.request("ping") for _ in range(6)]
            # the limit is on every frame, whatever its event
            add = await client.request("tools.add", {"a": 1, "b": 2})
            # another connection has its own count
            others = [await other.request("ping") for _ in range(5)]
            # the socket is still open and still answers, with 429s
            again = await client.request("ping")
            assert await client.receive_nothing(0.05)
    assert replies[:5] == [pong(i) for i in range(1, 6)]
    assert_throttled(replies[5], "ping", request_id=6)
    assert_throttled(add, "tools.add", request_id=7)
    assert others == [pong(i) for i in range(1, 6)]
    assert_throttled(again, "ping", request_id=8)


def mixed_frames(count):
    """``count`` frames of five kinds, each with a request id, and the reply each
    gets when it is not throttled."""
    frames = []
    for i in range(count):
        rid = f"r{i}"
        kind = i % 5
        if kind == 0:
            frames.append(({"event": "ping", "request_id": rid}, pong(rid), "ping"))
        elif kind == 1:
            frames.append(
                (
                    {"event": "tools.add", "data": {"a": i, "b": 1}, "request_id": rid},
                    {"event": "tools.add", "data": {"sum": i + 1}, "request_id": rid},
                    "tools.add",
                )
            )
        elif kind == 2:  # no event: a bad frame
            detail = 'Frame needs an "event" string.'
            error = {"status": 400, "code": "parse_error", "detail": detail}
            frames.append(
                ({"data": {}, "request_id": rid}, {"event": None, "error": error}, None)
            )
        elif kind == 3:  # data not an object: a bad frame with an event
            detail = '"data" must be a JSON object.'
            error = {"status": 400, "code": "parse_error", "detail": detail}
            frames.append(
                (
                    {"event": "tools.add", "data": [1], "request_id": rid},
                    {"event": "tools.add", "error": error},
                    "tools.add",
                )
            )
        else:
            detail = "No binding serves the stream 'nowhere'."
            error = {"status": 404, "code": "unknown_event", "detail": detail}
            frames.append(
                (
                    {"event": "nowhere.thing", "request_id": rid},
                    {"event": "nowhere.thing", "error": error},
                    "nowhere.thing",
                )
            )
    for frame, reply, _ in frames:
        reply["request_id"] = frame["request_id"]
    return frames


@pytest.mark.parametrize("path", PATHS)
async def test_every_frame_is_answered_exactly_once(communicator, path):
    frames = mixed_frames(20)
    with limits(THROTTLE_RATES="5/minute"):
        async with communicator(path=path) as client:
            for frame, _, _ in frames:
                await client.send_json_to(frame)
            replies = [await client.receive_json_from(3) for _ in frames]
            assert await client.receive_nothing(0.1)
    by_id = {}
    for reply in replies:
        assert reply["request_id"] not in by_id, reply
        by_id[reply["request_id"]] = reply
    assert sorted(by_id) == sorted(frame["request_id"] for frame, _, _ in frames)
    # The first five frames, bad ones included, are answered as usual; the rest
    # are throttled, in the order they were sent.
    for i, (frame, expected, event) in enumerate(frames):
        reply = by_id[frame["request_id"]]
        if i < 5:
            assert reply == expected
        else:
            assert_throttled(reply, event, request_id=frame["request_id"])


async def test_frames_that_are_not_json_count_and_are_throttled(communicator):
    with limits(THROTTLE_RATES="2/minute"):
        async with communicator() as client:
            await client.send_to(text_data="not json")
            bad = await client.receive_json_from()
            ping = await client.request("ping")
            throttled_ping = await client.request("ping")
            await client.send_to(text_data="not json")
            throttled_bad = await client.receive_json_from()
    assert bad == {
        "event": None,
        "error": {
            "status": 400,
            "code": "parse_error",
            "detail": "Frame is not valid JSON.",
        },
    }
    assert ping == pong(1)
    assert_throttled(throttled_ping, "ping", request_id=2)
    assert_throttled(throttled_bad, None)


async def test_the_window_slides(communicator, clock):
    with limits(THROTTLE_RATES="2/minute"):
        async with communicator() as client:
            first = [await client.request("ping") for _ in range(2)]
            clock.now += 45
            late = await client.request("ping")
            clock.now += 14.5  # the first two frames are 59.5 s old
            still = await client.request("ping")
            clock.now += 0.5  # 60 s: they have left the window
            after = [await client.request("ping") for _ in range(3)]
    assert first == [pong(1), pong(2)]
    assert_throttled(late, "ping", request_id=3, wait=15)
    assert_throttled(still, "ping", request_id=4, wait=1)
    assert after[:2] == [pong(5), pong(6)]
    assert_throttled(after[2], "ping", request_id=7, wait=60)


# -- THROTTLE_RATES by event -----------------------------------------------------


def category_names():
    return sync_to_async(
        lambda: sorted(Category.objects.values_list("name", flat=True))
    )()


async def test_a_rate_by_action_limits_only_that_action(communicator, user, other_user):
    rates = {"default": "100/second", "create": "2/minute"}
    with limits(THROTTLE_RATES=rates):
        async with communicator(user) as client, communicator(other_user) as other:
            created = [
                await client.request("shop.Category.create", {"name": f"c{i}"})
                for i in range(2)
            ]
            refused = await client.request("shop.Category.create", {"name": "c2"})
            hashed = await client.request("shop.Category.create#h", {"name": "c3"})
            # the action on another stream is the same action
            product = await client.request(
                "shop.Product.create", {"name": "Cup", "price": "1.00"}
            )
            assert await category_names() == ["c0", "c1"]
            update = await client.request(
                "shop.Category.update", {"id": created[0]["data"]["id"], "name": "x"}
            )
            pings = [await client.request("ping") for _ in range(10)]
            listed = await client.request("shop.Category.list")
            other_create = await other.request("shop.Category.create", {"name": "o"})
    assert [reply["data"]["name"] for reply in created] == ["c0", "c1"]
    assert_throttled(refused, "shop.Category.create", request_id=3)
    assert_throttled(hashed, "shop.Category.create#h", request_id=4)
    assert_throttled(product, "shop.Product.create", request_id=5)
    assert update["data"] == {"id": created[0]["data"]["id"], "name": "x"}
    assert pings == [pong(i) for i in range(7, 17)]
    assert listed["data"]["count"] == 2
    assert other_create["data"]["name"] == "o"
    assert await category_names() == ["c1", "o", "x"]


async def test_a_rate_by_event_limits_only_that_stream(communicator, user):
    with limits(THROTTLE_RATES={"shop.Category.create": "1/minute"}):
        async with communicator(user) as client:
            first = await client.request("shop.Category.create", {"name": "a"})
            second = await client.request("shop.Category.create#x", {"name": "b"})
            product = await client.request(
                "shop.Product.create", {"name": "Cup", "price": "1.00"}
            )
            unlimited = [await client.request("ping") for _ in range(20)]
    assert first["data"]["name"] == "a"
    assert_throttled(second, "shop.Category.create#x", request_id=2)
    assert product["data"]["name"] == "Cup"
    assert unlimited == [pong(i) for i in range(4, 24)]
    assert await category_names() == ["a"]


async def test_a_zero_rate_refuses_every_frame_it_covers(communicator, user):
    with limits(THROTTLE_RATES={"create": "0/minute"}):
        async with communicator(user) as client:
            refused = await client.request("shop.Category.create", {"name": "a"})
            ping = await client.request("ping")
            refused_again = await client.request("shop.Category.create", {"name": "b"})
    assert_throttled(refused, "shop.Category.create", request_id=1)
    assert ping == pong(2)
    assert_throttled(refused_again, "shop.Category.create", request_id=3)
    assert await category_names() == []


# -- parse_rate --------------------------------------------------------------------


@pytest.mark.parametrize(
    "rate,expected",
    [
        ("100/second", (100, 1)),
        ("5/minute", (5, 60)),
        ("10/hour", (10, 3600)),
        ("1/day", (1, 86400)),
        ("3/s", (3, 1)),
        ("3/m", (3, 60)),
        ("3/h", (3, 3600)),
        ("3/d", (3, 86400)),
        ("2/Minute", (2, 60)),
        ("0/minute", (0, 60)),
    ],
)
def test_parse_rate(rate, expected):
    assert parse_rate(rate) == expected


@pytest.mark.parametrize(
    "rate",
    [
        "100",
        "100/",
        "/second",
        "abc/second",
        "1.5/second",
        "100/fortnight",
        "1/2/second",
        "-1/second",
        "",
        None,
        100,
    ],
    ids=repr,
)
def test_parse_rate_refuses_what_is_not_a_rate(rate):
    with pytest.raises(ImproperlyConfigured) as info:
        parse_rate(rate)
    message = str(info.value)
    assert message.startswith(
        f"Invalid rate {rate!r} in CHANNELS_BINDING['THROTTLE_RATES']"
    ), message
    assert '"<count>/<second|minute|hour|day>", e.g. "100/second"' in message


def test_connection_throttle_applies_every_matching_key(clock):
    throttle = ConnectionThrottle(
        {"default": "3/minute", "create": "1/minute", "shop.Tag.list": "1/second"}
    )
    assert throttle.wait("shop.Tag.create#a") is None
    assert throttle.wait("shop.Tag.create") == 60  # "create"
    assert throttle.wait("shop.Tag.list") is None
    assert throttle.wait("shop.Tag.list#b") == 1  # "shop.Tag.list"
    assert throttle.wait("ping") is None
    assert throttle.wait("ping") == 60  # "default": refused frames did not count
    assert not ConnectionThrottle(None)
    assert not ConnectionThrottle({})
    assert ConnectionThrottle("1/second")


# -- MAX_CONCURRENT_REQUESTS -------------------------------------------------------


class Gate:
    """What the ``throttle.gate.wait`` handlers wait on, and how many wait."""

    opened: asyncio.Event
    in_flight = 0
    most = 0
    started: list = []


@pytest.fixture(scope="module", autouse=True)
def gate_binding():
    class GateBinding(AsyncBinding):
        stream = "throttle.gate"
        permission_classes = [AllowAny]

        @bind("wait", method="GET")
        async def wait(self, request):
            Gate.in_flight += 1
            Gate.most = max(Gate.most, Gate.in_flight)
            Gate.started.append(request.data["n"])
            try:
                await Gate.opened.wait()
            finally:
                Gate.in_flight -= 1
            return {"n": request.data["n"]}

    yield
    registry.unregister("throttle.gate")
    assert "throttle.gate" not in registry


@pytest.fixture
def gate():
    Gate.opened = asyncio.Event()
    Gate.in_flight = Gate.most = 0
    Gate.started = []
    yield Gate
    Gate.opened.set()


async def until(condition, timeout=3):
    async def wait():
        while not condition():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(wait(), timeout)  # asyncio.timeout() is Python 3.11+


async def test_max_concurrent_requests_bounds_handlers_in_flight(communicator, gate):
    with limits(MAX_CONCURRENT_REQUESTS=2):
        async with communicator() as client:
            for n in range(6):
                await client.send_json_to(
                    {"event": "throttle.gate.wait", "data": {"n": n}, "request_id": n}
                )
            await until(lambda: gate.in_flight == 2)
            # Give a third handler every chance to start: none may.
            assert await client.receive_nothing(0.1)
            assert (gate.in_flight, gate.most, sorted(gate.started)) == (2, 2, [0, 1])
            gate.opened.set()
            replies = [await client.receive_json_from(3) for _ in range(6)]
            assert await client.receive_nothing(0.05)
    assert sorted(reply["request_id"] for reply in replies) == list(range(6))
    for reply in replies:
        assert reply == {
            "event": "throttle.gate.wait",
            "data": {"n": reply["request_id"]},
            "request_id": reply["request_id"],
        }
    assert gate.most == 2
    assert gate.in_flight == 0
    assert sorted(gate.started) == list(range(6))


async def test_default_max_concurrent_requests_is_sixteen(communicator, gate):
    async with communicator() as client:
        for n in range(20):
            await client.send_json_to(
                {"event": "throttle.gate.wait", "data": {"n": n}, "request_id": n}
            )
        await until(lambda: gate.in_flight == 16)
        assert await client.receive_nothing(0.1)
        assert gate.most == 16
        gate.opened.set()
        replies = [await client.receive_json_from(3) for _ in range(20)]
    assert sorted(reply["request_id"] for reply in replies) == list(range(20))
    assert gate.most == 16


async def test_throttled_frames_take_no_slot(communicator, gate):
    with limits(THROTTLE_RATES="2/minute", MAX_CONCURRENT_REQUESTS=2):
        async with communicator() as client:
            for n in range(4):
                await client.send_json_to(
                    {"event": "throttle.gate.wait", "data": {"n": n}, "request_id": n}
                )
            # frames 2 and 3 are answered at once, while 0 and 1 are in flight
            throttled = [await client.receive_json_from(3) for _ in range(2)]
            await until(lambda: gate.in_flight == 2)
            assert sorted(gate.started) == [0, 1]
            gate.opened.set()
            answered = [await client.receive_json_from(3) for _ in range(2)]
    for n, reply in enumerate(throttled, start=2):
        assert_throttled(reply, "throttle.gate.wait", request_id=n)
    assert sorted(reply["request_id"] for reply in answered) == [0, 1]


async def test_pending_request_bytes_are_bounded(communicator, gate):
    """Requests waiting for a slot keep their frames: past
    MAX_PENDING_REQUEST_BYTES a frame is answered 429 at once, whatever the
    count of requests, and the socket stays open."""
    padding = "x" * 100_000

    def frame(n):
        return {
            "event": "throttle.gate.wait",
            "data": {"n": n, "padding": padding},
            "request_id": n,
        }

    with limits(MAX_CONCURRENT_REQUESTS=2, MAX_PENDING_REQUEST_BYTES=350_000):
        async with communicator() as client:
            for n in range(6):
                await client.send_json_to(frame(n))
            # Three frames of about 100 KB fit; the other three are refused.
            refused = [await client.receive_json_from(3) for _ in range(3)]
            await until(lambda: gate.in_flight == 2)
            assert await client.receive_nothing(0.1)
            gate.opened.set()
            answered = [await client.receive_json_from(3) for _ in range(3)]
            # Once they are answered, the bytes are free again.
            gate.opened.set()
            await client.send_json_to(frame(6))
            again = await client.receive_json_from(3)
    assert [reply["request_id"] for reply in refused] == [3, 4, 5]
    for reply in refused:
        assert reply["error"]["status"] == 429, reply
        assert reply["error"]["code"] == "throttled", reply
    assert sorted(reply["request_id"] for reply in answered) == [0, 1, 2]
    assert again == {"event": "throttle.gate.wait", "data": {"n": 6}, "request_id": 6}


async def test_one_frame_passes_whatever_the_pending_limit(communicator, gate):
    gate.opened.set()
    with limits(MAX_PENDING_REQUEST_BYTES=10):
        async with communicator() as client:
            await client.send_json_to(
                {"event": "throttle.gate.wait", "data": {"n": 1}, "request_id": 1}
            )
            reply = await client.receive_json_from(3)
    assert reply == {"event": "throttle.gate.wait", "data": {"n": 1}, "request_id": 1}
