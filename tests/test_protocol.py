"""The wire protocol (SPEC section 3) and the connection events, over a websocket.

Every test talks to the real ASGI application through ``BindingCommunicator``: the
frames here are exactly what a JavaScript client sends and receives.
"""

import json

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from tests.shop.models import Category, Product, Tag

pytestmark = pytest.mark.django_db(transaction=True)

PATHS = ["/ws/", "/ws/sync/"]
NOT_GIVEN = object()


def assert_error(frame, event, status, code, *, request_id=NOT_GIVEN):
    """``frame`` is exactly ``{"event", "error": {...}, "request_id"?}``."""
    keys = (
        {"event", "error"}
        if request_id is NOT_GIVEN
        else {"event", "error", "request_id"}
    )
    assert set(frame) == keys, frame
    assert frame["event"] == event
    assert set(frame["error"]) == {"status", "code", "detail"}, frame
    assert frame["error"]["status"] == status, frame
    assert frame["error"]["code"] == code, frame
    assert isinstance(frame["error"]["detail"], str | dict), frame
    assert frame["error"]["detail"], frame
    if request_id is not NOT_GIVEN:
        assert frame["request_id"] == request_id


async def assert_alive(client):
    """The socket is open and the next frame it sends is the answer to a ping.

    Because the answer to the ping is the *next* frame, a bad frame that had been
    answered twice would make this fail.
    """
    await client.send_json_to({"event": "ping"})
    assert await client.receive_json_from() == {"event": "pong", "data": {}}


@pytest.fixture
async def product():
    category = await sync_to_async(Category.objects.create)(name="Office")
    return await sync_to_async(Product.objects.create)(
        name="Pen", price="1.50", category=category
    )


def serialized(product):
    return {
        "id": product.pk,
        "name": product.name,
        "description": product.description,
        "price": str(product.price),
        "in_stock": product.in_stock,
        "category": (
            {"id": product.category_id, "name": product.category.name}
            if product.category_id
            else None
        ),
        "tags": [],
        "created": product.created.isoformat().replace("+00:00", "Z"),
    }


# -- the connection frame ------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
async def test_connection_frame_anonymous(communicator, path):
    async with communicator(path=path) as client:
        info = client.connection
        assert set(info) == {"client_id", "user_id", "authenticated", "channels"}
        assert isinstance(info["client_id"], str) and len(info["client_id"]) >= 8
        assert info["user_id"] is None
        assert info["authenticated"] is False
        assert info["channels"] == []


@pytest.mark.parametrize("path", PATHS)
async def test_connection_frame_authenticated(communicator, user, path):
    async with communicator(user, path=path) as client:
        assert client.connection["user_id"] == user.pk
        assert client.connection["authenticated"] is True
        assert client.connection["channels"] == []


async def test_connection_frame_is_the_first_frame(communicator):
    client = communicator()
    await client.send_input({"type": "websocket.connect"})
    assert (await client.receive_output())["type"] == "websocket.accept"
    first = await client.receive_json_from()
    assert set(first) == {"event", "data"}
    assert first["event"] == "connection"
    assert first["data"]["authenticated"] is False
    await client.disconnect()


async def test_client_ids_are_unique(communicator):
    async with communicator() as one, communicator() as two:
        assert one.connection["client_id"] != two.connection["client_id"]


@pytest.mark.parametrize("path", PATHS)
async def test_connection_event_asks_again(communicator, user, path):
    async with communicator(user, path=path) as client:
        await client.send_json_to({"event": "connection"})
        assert await client.receive_json_from() == {
            "event": "connection",
            "data": client.connection,
        }
        reply = await client.request("connection")
        assert reply == {
            "event": "connection",
            "data": client.connection,
            "request_id": 1,
        }


@pytest.mark.parametrize("path", PATHS)
async def test_connection_events_echo_their_hash(communicator, path):
    async with communicator(path=path) as client:
        await client.send_json_to({"event": "ping#keepalive"})
        assert await client.receive_json_from() == {
            "event": "pong#keepalive",
            "data": {},
        }
        reply = await client.request("connection#again")
        assert reply == {
            "event": "connection#again",
            "data": client.connection,
            "request_id": 1,
        }
        reply = await client.request("authorize#login", {"token": "nope"})
        assert reply["event"] == "authorize#login"
        assert reply["error"]["status"] == 401


# -- ping ----------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
async def test_ping(communicator, path):
    async with communicator(path=path) as client:
        await client.send_json_to({"event": "ping"})
        assert await client.receive_json_from() == {"event": "pong", "data": {}}
        await client.send_json_to({"event": "ping", "data": {"x": 1}})
        assert await client.receive_json_from() == {"event": "pong", "data": {}}
        await client.send_json_to({"event": "ping", "data": None})
        assert await client.receive_json_from() == {"event": "pong", "data": {}}


# -- request_id ----------------------------------------------------------------

REQUEST_IDS = ["abc-1", 7, 0, -3, 2.5, {"n": [1, "x"]}, [1, 2], True, False, "", None]


@pytest.mark.parametrize("request_id", REQUEST_IDS)
async def test_request_id_echoed_on_ping(communicator, request_id):
    async with communicator() as client:
        await client.send_json_to({"event": "ping", "request_id": request_id})
        assert await client.receive_json_from() == {
            "event": "pong",
            "data": {},
            "request_id": request_id,
        }


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("request_id", ["r-1", 42, {"widget": "sidebar"}, None])
async def test_request_id_echoed_on_binding_reply(
    communicator, product, path, request_id
):
    async with communicator(path=path) as client:
        await client.send_json_to(
            {
                "event": "shop.Product.retrieve",
                "data": {"id": product.pk},
                "request_id": request_id,
            }
        )
        assert await client.receive_json_from() == {
            "event": "shop.Product.retrieve",
            "data": serialized(product),
            "request_id": request_id,
        }


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("request_id", ["r-1", 42, {"widget": "sidebar"}, None])
async def test_request_id_echoed_on_error(communicator, path, request_id):
    async with communicator(path=path) as client:
        await client.send_json_to(
            {
                "event": "shop.Product.retrieve",
                "data": {"id": 999999},
                "request_id": request_id,
            }
        )
        frame = await client.receive_json_from()
        assert_error(
            frame, "shop.Product.retrieve", 404, "not_found", request_id=request_id
        )
        # A frame that cannot be dispatched still echoes the id it carried.
        await client.send_json_to({"event": "", "request_id": request_id})
        frame = await client.receive_json_from()
        assert_error(frame, None, 400, "parse_error", request_id=request_id)


@pytest.mark.parametrize("path", PATHS)
async def test_request_id_absent_when_not_given(communicator, product, path):
    async with communicator(path=path) as client:
        await client.send_json_to({"event": "ping"})
        assert "request_id" not in await client.receive_json_from()
        await client.send_json_to(
            {"event": "shop.Product.retrieve", "data": {"id": product.pk}}
        )
        assert await client.receive_json_from() == {
            "event": "shop.Product.retrieve",
            "data": serialized(product),
        }
        await client.send_json_to({"event": "shop.Product.retrieve", "data": {"id": 0}})
        assert_error(
            await client.receive_json_from(), "shop.Product.retrieve", 404, "not_found"
        )
        await client.send_json_to({"event": "nope.Nope.list"})
        assert_error(
            await client.receive_json_from(), "nope.Nope.list", 404, "unknown_event"
        )


# -- hashes --------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
async def test_hash_is_echoed(communicator, product, path):
    async with communicator(path=path) as client:
        reply = await client.request(
            "shop.Product.retrieve#sidebar", {"id": product.pk}
        )
        assert reply == {
            "event": "shop.Product.retrieve#sidebar",
            "data": serialized(product),
            "request_id": 1,
        }
        reply = await client.request("shop.Product.list#main", {})
        assert reply["event"] == "shop.Product.list#main"
        assert [row["id"] for row in reply["data"]["rows"]] == [product.pk]
        reply = await client.request("shop.Product.retrieve#sidebar", {"id": 0})
        assert_error(
            reply, "shop.Product.retrieve#sidebar", 404, "not_found", request_id=3
        )


async def test_hash_echoed_on_connection_independent_events(communicator):
    async with communicator() as client:
        reply = await client.request("tools.add#calc", {"a": 1, "b": 2})
        assert reply == {"event": "tools.add#calc", "data": {"sum": 3}, "request_id": 1}


async def test_id_in_data_wins_over_hash(communicator, product):
    async with communicator() as client:
        reply = await client.request("shop.Product.retrieve#999999", {"id": product.pk})
        assert reply["event"] == "shop.Product.retrieve#999999"
        assert reply["data"] == serialized(product)


@pytest.mark.parametrize("path", PATHS)
async def test_hash_as_primary_key_retrieve(communicator, product, path):
    async with communicator(path=path) as client:
        reply = await client.request(f"shop.Product.retrieve#{product.pk}")
        assert reply == {
            "event": f"shop.Product.retrieve#{product.pk}",
            "data": serialized(product),
            "request_id": 1,
        }
        reply = await client.request("shop.Product.retrieve#999999")
        assert_error(
            reply, "shop.Product.retrieve#999999", 404, "not_found", request_id=2
        )


async def test_hash_as_primary_key_update(communicator, user, product):
    async with communicator(user) as client:
        reply = await client.request(
            f"shop.Product.update#{product.pk}", {"name": "Quill"}
        )
    assert reply["event"] == f"shop.Product.update#{product.pk}"
    await sync_to_async(product.refresh_from_db)()
    assert product.name == "Quill"
    assert reply["data"] == await sync_to_async(serialized)(product)


async def test_hash_as_primary_key_save(communicator, user, product):
    async with communicator(user) as client:
        reply = await client.request(
            f"shop.Product.save#{product.pk}", {"price": "3.25"}
        )
    assert reply == {
        "event": f"shop.Product.save#{product.pk}",
        "data": {"success": True, "id": product.pk},
        "request_id": 1,
    }
    await sync_to_async(product.refresh_from_db)()
    assert str(product.price) == "3.25"
    assert await sync_to_async(Product.objects.count)() == 1


async def test_hash_as_primary_key_delete(communicator, user, product):
    async with communicator(user) as client:
        reply = await client.request(f"shop.Product.delete#{product.pk}")
    assert reply == {
        "event": f"shop.Product.delete#{product.pk}",
        "data": {"success": True, "id": product.pk},
        "request_id": 1,
    }
    assert not await sync_to_async(Product.objects.filter(pk=product.pk).exists)()


# -- bad frames ----------------------------------------------------------------

NESTED = "[" * 100_000 + "]" * 100_000

# (raw text frame, expected event, expected request_id or NOT_GIVEN)
PARSE_ERRORS = {
    "not json": ("hello there", None, NOT_GIVEN),
    "truncated json": ('{"event": "ping"', None, NOT_GIVEN),
    "empty text": ("", None, NOT_GIVEN),
    "array": ('[{"event": "ping"}]', None, NOT_GIVEN),
    "string": ('"ping"', None, NOT_GIVEN),
    "number": ("42", None, NOT_GIVEN),
    "null": ("null", None, NOT_GIVEN),
    "true": ("true", None, NOT_GIVEN),
    "missing event": ('{"data": {}, "request_id": 5}', None, 5),
    "event null": ('{"event": null, "request_id": "a"}', None, "a"),
    "event number": ('{"event": 12}', None, NOT_GIVEN),
    "event list": ('{"event": ["shop.Product.list"]}', None, NOT_GIVEN),
    "event object": ('{"event": {"name": "ping"}}', None, NOT_GIVEN),
    "event empty": ('{"event": "", "request_id": 1}', None, 1),
    "data list": (
        '{"event": "shop.Product.list", "data": [1]}',
        "shop.Product.list",
        NOT_GIVEN,
    ),
    "data string": (
        '{"event": "shop.Product.list", "data": "x", "request_id": 3}',
        "shop.Product.list",
        3,
    ),
    "data number": (
        '{"event": "shop.Product.list", "data": 1}',
        "shop.Product.list",
        NOT_GIVEN,
    ),
    "data true": ('{"event": "ping", "data": true}', "ping", NOT_GIVEN),
    "NaN": ('{"event": "shop.Product.list", "data": {"page": NaN}}', None, NOT_GIVEN),
    "Infinity": ('{"event": "ping", "data": {"x": Infinity}}', None, NOT_GIVEN),
    "-Infinity": ('{"event": "ping", "data": {"x": -Infinity}}', None, NOT_GIVEN),
    "1e999": ('{"event": "ping", "data": {"x": 1e999}}', None, NOT_GIVEN),
    "-1e999": ('{"event": "ping", "data": {"x": -1e999}}', None, NOT_GIVEN),
    "deeply nested": (
        '{"event": "ping", "data": {"x": ' + NESTED + "}}",
        None,
        NOT_GIVEN,
    ),
    "deeply nested top": (NESTED, None, NOT_GIVEN),
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "text,event,request_id", PARSE_ERRORS.values(), ids=list(PARSE_ERRORS)
)
async def test_bad_frame_is_one_400_and_socket_lives(
    communicator, path, text, event, request_id
):
    async with communicator(path=path) as client:
        # send_input, not send_to: the latter refuses an empty text frame.
        await client.send_input({"type": "websocket.receive", "text": text})
        frame = await client.receive_json_from()
        assert_error(frame, event, 400, "parse_error", request_id=request_id)
        await assert_alive(client)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "payload",
    [b'{"event": "ping"}', b"\x00\xff\xfe", b"x" * 10],
    ids=["json", "junk", "text"],
)
async def test_binary_frame_is_a_parse_error(communicator, path, payload):
    async with communicator(path=path) as client:
        await client.send_to(bytes_data=payload)
        assert_error(await client.receive_json_from(), None, 400, "parse_error")
        await assert_alive(client)


@pytest.mark.parametrize("path", PATHS)
async def test_data_null_is_an_empty_object(communicator, product, path):
    async with communicator(path=path) as client:
        await client.send_to(
            text_data='{"event": "shop.Product.list", "data": null, "request_id": 1}'
        )
        assert await client.receive_json_from() == {
            "event": "shop.Product.list",
            "data": {"page": 1, "limit": 25, "count": 1, "rows": [serialized(product)]},
            "request_id": 1,
        }
        await client.send_to(
            text_data='{"event": "shop.Product.retrieve", "data": null}'
        )
        frame = await client.receive_json_from()
        assert_error(frame, "shop.Product.retrieve", 400, "invalid")
        assert frame["error"]["detail"] == {"id": ["This field is required."]}


UNKNOWN_EVENTS = [
    "nope.Thing.list",
    "shop.Nope.retrieve",
    "shop.list",
    "list",
    "hello",
    "Shop.Product.list",
    "shop.Product.frobnicate",
    "shop.Product.",
    "shop.Product.get_queryset",
    "shop.Product.get_object",
    "shop.Product.__init__",
    "shop.Product._collect_events",
    "shop.Product.stats.extra",
    "tools.nothing",
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("event", UNKNOWN_EVENTS)
async def test_unknown_event_is_404(communicator, user, path, event):
    async with communicator(user, path=path) as client:
        reply = await client.request(event, {"id": 1})
        assert_error(reply, event, 404, "unknown_event", request_id=1)
        await assert_alive(client)


async def test_unknown_event_keeps_hash(communicator):
    async with communicator() as client:
        reply = await client.request("shop.Product.frobnicate#w1")
        assert_error(
            reply, "shop.Product.frobnicate#w1", 404, "unknown_event", request_id=1
        )


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "event",
    [
        "shop.Tag.create",
        "shop.Tag.update",
        "shop.Tag.save",
        "shop.Tag.delete",
        "shop.Tag.search",
        "shop.Tag.create#x",
    ],
)
async def test_disabled_builtin_action_is_405(communicator, user, path, event):
    async with communicator(user, path=path) as client:
        reply = await client.request(event, {"id": 1, "name": "blue"})
        assert_error(reply, event, 405, "method_not_allowed", request_id=1)
        await assert_alive(client)
    assert await sync_to_async(Tag.objects.count)() == 0


@pytest.mark.parametrize("path", PATHS)
async def test_subscribe_and_unsubscribe_answer_on_both_consumers(
    communicator, product, path
):
    async with communicator(path=path) as client:
        reply = await client.request("shop.Product.subscribe", {"id": product.pk})
        assert reply == {
            "event": "shop.Product.subscribe",
            "data": {"subscribed": True},
            "request_id": 1,
        }
        reply = await client.request("shop.Product.unsubscribe", {"id": product.pk})
        assert reply["data"] == {"subscribed": False}
        await assert_alive(client)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("action", ["subscribe", "unsubscribe"])
async def test_subscribe_left_out_of_actions_is_405(communicator, path, action):
    async with communicator(path=path) as client:
        reply = await client.request(f"shop.Tag.{action}", {"id": 1})
        assert_error(
            reply, f"shop.Tag.{action}", 405, "method_not_allowed", request_id=1
        )
        await assert_alive(client)


# -- frame size ----------------------------------------------------------------

SMALL_FRAMES = override_settings(
    CHANNELS_BINDING={
        "BINDINGS_MODULES": ["tests.root_bindings"],
        "MAX_FRAME_BYTES": 1000,
    }
)


def frame_of(size, filler="a"):
    """A valid ping frame of exactly ``size`` UTF-8 bytes, padded with ``filler``
    (topped up with ASCII when the filler's width does not divide the room)."""
    head, tail = '{"event":"ping","data":{"pad":"', '"}}'
    room = size - len(head.encode()) - len(tail.encode())
    count, rest = divmod(room, len(filler.encode()))
    text = head + filler * count + "a" * rest + tail
    assert len(text.encode()) == size
    return text


async def assert_too_large_then_alive_or_1009(client):
    """The 413 error frame, then either the socket still answers or it closed
    with 1009 (the one close the spec allows for a bad frame)."""
    assert_error(await client.receive_json_from(), None, 413, "too_large")
    await client.send_json_to({"event": "ping"})
    message = await client.receive_output()
    if message["type"] == "websocket.close":
        assert message.get("code") == 1009
    else:
        assert message == {
            "type": "websocket.send",
            "text": '{"event":"pong","data":{}}',
        }


@pytest.mark.parametrize("path", PATHS)
async def test_frame_at_the_limit_is_answered(communicator, path):
    with SMALL_FRAMES:
        async with communicator(path=path) as client:
            await client.send_to(text_data=frame_of(1000))
            assert await client.receive_json_from() == {"event": "pong", "data": {}}
            await client.send_to(text_data=frame_of(1000, "é"))
            assert await client.receive_json_from() == {"event": "pong", "data": {}}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "text",
    [
        frame_of(1001),
        frame_of(5000),
        # Under the limit in characters, over it in UTF-8 bytes.
        frame_of(1002, "é"),
        frame_of(1002, "€"),
        frame_of(1002, "😀"),
    ],
    ids=["1001-ascii", "5000-ascii", "2-byte-chars", "3-byte-chars", "4-byte-chars"],
)
async def test_frame_over_the_limit_is_413(communicator, path, text):
    with SMALL_FRAMES:
        async with communicator(path=path) as client:
            await client.send_to(text_data=text)
            await assert_too_large_then_alive_or_1009(client)


def test_multibyte_frames_are_under_the_limit_in_characters():
    # The point of the multibyte cases above: a character count would let them in.
    for filler in ("é", "€", "😀"):
        assert len(frame_of(1002, filler)) < 1000


@pytest.mark.parametrize("path", PATHS)
async def test_binary_frame_over_the_limit_is_413(communicator, path):
    with SMALL_FRAMES:
        async with communicator(path=path) as client:
            await client.send_to(bytes_data=b"x" * 1001)
            await assert_too_large_then_alive_or_1009(client)


# -- server errors -------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
async def test_unexpected_exception_is_a_bare_500(communicator, path):
    async with communicator(path=path) as client:
        await client.send_json_to({"event": "shop.Product.boom#b", "request_id": "r"})
        text = await client.receive_from()
        frame = json.loads(text)
        assert_error(frame, "shop.Product.boom#b", 500, "server_error", request_id="r")
        for leak in (
            "Traceback",
            "SELECT",
            "/secret",
            "RuntimeError",
            "shop_product",
            ".py",
        ):
            assert leak not in text
        await assert_alive(client)
