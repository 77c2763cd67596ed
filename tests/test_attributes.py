"""Binding attributes and settings that had no test of their own, over a websocket,
with exact payloads: ``filterset_class`` (django-filter), ``page_size``,
``max_page_size``, ``auto_subscribe``, ``ordering``, the ``DEFAULT_FIELDS_EXCLUDE``
setting, the default ``MAX_FRAME_BYTES`` and ``request.request_id``.

"No push" is asserted with a marker, as in ``tests/test_live.py``: after the change
that must not be pushed, a change that must be pushed is made, and the next frame
must be the marker's.
"""

from decimal import Decimal

import django_filters
import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from rest_framework.permissions import AllowAny
from rest_framework.test import APIClient

from channels_binding.bindings import AsyncBinding, bind
from channels_binding.registry import registry
from tests.shop.models import Note, Product
from tests.test_live import next_push, orm, save

pytestmark = pytest.mark.django_db(transaction=True)

PATHS = ["/ws/", "/ws/sync/"]
ROOT = {"BINDINGS_MODULES": ["tests.root_bindings"]}
FIELDS = ["id", "name", "price", "in_stock"]
ONE_MIB = 1024 * 1024


def row(product):
    """What the ``attrs.*`` product bindings serialize a product to."""
    return {
        "id": product.pk,
        "name": product.name,
        "price": f"{Decimal(product.price):.2f}",
        "in_stock": product.in_stock,
    }


def names(reply):
    return [r["name"] for r in reply["data"]["rows"]]


# -- bindings ------------------------------------------------------------------


class ProductFilter(django_filters.FilterSet):
    min_price = django_filters.NumberFilter(field_name="price", lookup_expr="gte")
    name = django_filters.CharFilter(field_name="name", lookup_expr="icontains")

    class Meta:
        model = Product
        fields = ["in_stock"]


STREAMS = [
    "attrs.filtered",
    "attrs.paged",
    "attrs.ordered",
    "attrs.orderedstr",
    "attrs.booleans",
    "attrs.unwatched",
    "attrs.tools",
    "attrs.users",
    "attrs.notes",
]


@pytest.fixture(scope="module", autouse=True)
def attribute_bindings():
    """Register the ``attrs.*`` bindings for this module only."""
    before = {binding.stream: binding for binding in registry}
    try:

        class Filtered(AsyncBinding):
            model = Product
            stream = "attrs.filtered"
            fields = FIELDS
            filterset_class = ProductFilter

        class Paged(AsyncBinding):
            model = Product
            stream = "attrs.paged"
            fields = FIELDS
            page_size = 2
            max_page_size = 3

        class Ordered(AsyncBinding):
            model = Product
            stream = "attrs.ordered"
            fields = FIELDS
            ordering = ["-price"]
            ordering_fields = ["name"]

        class Booleans(AsyncBinding):
            model = Product
            stream = "attrs.booleans"
            fields = FIELDS
            filter_fields = {"in_stock": ["exact", "in"], "category": ["isnull"]}

        class OrderedByString(AsyncBinding):
            model = Product
            stream = "attrs.orderedstr"
            fields = FIELDS
            ordering = "-price"  # one term as a string, as DRF allows

        class Unwatched(AsyncBinding):
            model = Product
            stream = "attrs.unwatched"
            fields = FIELDS
            auto_subscribe = False

        class Tools(AsyncBinding):
            stream = "attrs.tools"
            permission_classes = [AllowAny]

            @bind("size", method="GET")
            def size(self, request):
                return {"length": len(request.data["blob"])}

            @bind("rid", method="GET")
            def rid(self, request):
                return {"request_id": request.request_id}

            @bind("arid", method="GET")
            async def arid(self, request):
                return {"request_id": request.request_id}

        # Only ``model``: the fields come from DEFAULT_FIELDS_EXCLUDE.
        class Users(AsyncBinding):
            model = get_user_model()
            stream = "attrs.users"

        class Notes(AsyncBinding):
            model = Note
            stream = "attrs.notes"

        yield
    finally:
        for stream in STREAMS:
            registry.unregister(stream)
    after = {binding.stream: binding for binding in registry}
    assert after == before, "attrs.* bindings leaked into the registry"


@pytest.fixture
def catalog(db):
    """Five products whose pk order differs from name and price order.

    pk order: Pen, Shovel, Eraser, Hose, Notebook. Pen and Eraser share a price.
    """
    rows = [
        ("Pen", "1.50", True),
        ("Shovel", "25.00", True),
        ("Eraser", "1.50", False),
        ("Hose", "12.00", True),
        ("Notebook", "3.00", True),
    ]
    return {
        name: Product.objects.create(name=name, price=Decimal(price), in_stock=in_stock)
        for name, price, in_stock in rows
    }


def page(catalog, *row_names, page=1, limit, count=5):
    return {
        "page": page,
        "limit": limit,
        "count": count,
        "rows": [row(catalog[name]) for name in row_names],
    }


# -- filterset_class -----------------------------------------------------------


@pytest.mark.parametrize(
    "filters, expected",
    [
        ({"min_price": "5"}, ["Shovel", "Hose"]),
        ({"min_price": 3}, ["Shovel", "Hose", "Notebook"]),
        ({"name": "E", "in_stock": False}, ["Eraser"]),
        ({"name": "o", "in_stock": "true", "min_price": "3.5"}, ["Shovel", "Hose"]),
        ({}, ["Pen", "Shovel", "Eraser", "Hose", "Notebook"]),
    ],
)
async def test_filterset_filters_a_list(communicator, catalog, filters, expected):
    async with communicator() as client:
        reply = await client.request("attrs.filtered.list", {"filters": filters})
    assert reply == {
        "event": "attrs.filtered.list",
        "data": page(catalog, *expected, limit=25, count=len(expected)),
        "request_id": 1,
    }


@pytest.mark.parametrize("action", ["list", "search", "subscribe"])
@pytest.mark.parametrize("key", ["price", "category", "min_price__lt", "owner"])
async def test_filterset_refuses_an_undeclared_filter(
    communicator, catalog, action, key
):
    # ``price`` is a model field, but the FilterSet declares only ``min_price``,
    # ``name`` and ``in_stock``: the FilterSet decides, not the model.
    async with communicator() as client:
        reply = await client.request(
            f"attrs.filtered.{action}", {"filters": {"min_price": "1", key: "1"}}
        )
    assert reply == {
        "event": f"attrs.filtered.{action}",
        "error": {
            "status": 400,
            "code": "invalid",
            "detail": {key: [f"Filtering on {key!r} is not allowed."]},
        },
        "request_id": 1,
    }


@pytest.mark.parametrize("action", ["list", "search", "subscribe"])
async def test_filterset_refuses_a_bad_value(communicator, catalog, action):
    async with communicator() as client:
        reply = await client.request(
            f"attrs.filtered.{action}", {"filters": {"min_price": "cheap"}}
        )
    assert reply == {
        "event": f"attrs.filtered.{action}",
        "error": {
            "status": 400,
            "code": "invalid",
            "detail": {"min_price": ["Enter a number."]},
        },
        "request_id": 1,
    }


async def test_subscribe_with_filterset_filters_pushes_matching_saves(
    communicator, catalog, user
):
    pen, hose = catalog["Pen"], catalog["Hose"]
    async with communicator() as watcher, communicator(user) as writer:
        reply = await watcher.request(
            "attrs.filtered.subscribe#big", {"filters": {"min_price": "10"}}
        )
        assert reply == {
            "event": "attrs.filtered.subscribe#big",
            "data": {"subscribed": True},
            "request_id": 1,
        }

        # A save (over another socket) of a product that matches the filters.
        saved = await writer.request(
            "shop.Product.save", {"id": hose.pk, "name": "Long hose"}
        )
        assert saved["data"] == {"success": True, "id": hose.pk}
        assert await next_push(watcher) == {
            "event": "attrs.filtered.retrieve#big",
            "data": {
                "id": hose.pk,
                "name": "Long hose",
                "price": "12.00",
                "in_stock": True,
            },
        }

        # A save of one that does not match (1.50 < 10) pushes nothing ...
        saved = await writer.request(
            "shop.Product.save", {"id": pen.pk, "name": "Red pen"}
        )
        assert saved["data"] == {"success": True, "id": pen.pk}
        # ... nor does a new one that does not match ...
        await orm(Product.objects.create, name="Clip", price=Decimal("0.10"))
        # ... the marker: a row that enters the collection must be pushed next.
        dear = await orm(Product.objects.create, name="Saw", price=Decimal("40.00"))
        assert await next_push(watcher) == {
            "event": "attrs.filtered.retrieve#big",
            "data": row(dear),
        }
        assert watcher.pushes == []


# -- page_size, max_page_size, ordering ----------------------------------------

PK_ORDER = ["Pen", "Shovel", "Eraser", "Hose", "Notebook"]


async def test_page_size_is_the_default_limit(communicator, catalog):
    async with communicator() as client:
        first = await client.request("attrs.paged.list")
        second = await client.request("attrs.paged.list", {"page": 2})
        last = await client.request("attrs.paged.search", {"page": 3})
        past = await client.request("attrs.paged.list", {"page": 4})
    assert first == {
        "event": "attrs.paged.list",
        "data": page(catalog, "Pen", "Shovel", limit=2),
        "request_id": 1,
    }
    assert second["data"] == page(catalog, "Eraser", "Hose", page=2, limit=2)
    assert last["data"] == page(catalog, "Notebook", page=3, limit=2)
    assert past == {
        "event": "attrs.paged.list",
        "error": {
            "status": 404,
            "code": "not_found",
            "detail": "Page 4 is past the last page (3).",
        },
        "request_id": 4,
    }


async def test_page_size_leaves_other_bindings_on_the_setting(communicator, catalog):
    async with communicator() as client:
        reply = await client.request("attrs.ordered.list", {"ordering": "name"})
    assert reply["data"]["limit"] == 25
    assert len(reply["data"]["rows"]) == 5


@pytest.mark.parametrize("asked, given", [(50, 3), (4, 3), (3, 3), (1, 1)])
async def test_max_page_size_lowers_a_larger_limit(communicator, catalog, asked, given):
    async with communicator() as client:
        reply = await client.request("attrs.paged.list", {"limit": asked})
    assert reply == {
        "event": "attrs.paged.list",
        "data": page(catalog, *PK_ORDER[:given], limit=given),
        "request_id": 1,
    }


async def test_max_page_size_beats_a_larger_max_page_size_setting(
    communicator, catalog
):
    with override_settings(CHANNELS_BINDING={**ROOT, "MAX_PAGE_SIZE": 1000}):
        async with communicator() as client:
            reply = await client.request("attrs.paged.list", {"limit": 500})
    assert reply["data"] == page(catalog, *PK_ORDER[:3], limit=3)


async def test_ordering_is_the_default_order(communicator, catalog):
    async with communicator() as client:
        listed = await client.request("attrs.ordered.list")
        searched = await client.request("attrs.ordered.search", {"limit": 3})
        asked = await client.request("attrs.ordered.list", {"ordering": "-name"})
    # -price, then the primary key: Pen (pk 1) before Eraser (pk 3) at 1.50.
    by_price = ["Shovel", "Hose", "Notebook", "Pen", "Eraser"]
    assert listed == {
        "event": "attrs.ordered.list",
        "data": page(catalog, *by_price, limit=25),
        "request_id": 1,
    }
    assert searched["data"] == page(catalog, *by_price[:3], limit=3)
    # The client's ordering replaces the binding's.
    assert names(asked) == ["Shovel", "Pen", "Notebook", "Hose", "Eraser"]
    async with communicator() as client:
        as_string = await client.request("attrs.orderedstr.list")
    assert names(as_string) == by_price


# -- auto_subscribe = False ----------------------------------------------------


async def test_auto_subscribe_false_watches_nothing_it_reads(communicator, catalog):
    pen, hose = catalog["Pen"], catalog["Hose"]
    async with communicator() as client:
        retrieved = await client.request("attrs.unwatched.retrieve", {"id": pen.pk})
        assert retrieved == {
            "event": "attrs.unwatched.retrieve",
            "data": row(pen),
            "request_id": 1,
        }
        listed = await client.request("attrs.unwatched.list")
        assert names(listed) == PK_ORDER
        searched = await client.request("attrs.unwatched.search", {"query": ""})
        assert names(searched) == PK_ORDER
        # The marker: a binding that does auto-subscribe watches the hose.
        marked = await client.request("attrs.paged.retrieve", {"id": hose.pk})
        assert marked["data"] == row(hose)

        await orm(save, Product, pen.pk, name="Red pen")  # not pushed
        await orm(save, Product, hose.pk, name="Long hose")  # pushed
        assert await next_push(client) == {
            "event": "attrs.paged.retrieve",
            "data": {**row(hose), "name": "Long hose"},
        }
        assert client.pushes == []


async def test_auto_subscribe_false_still_allows_explicit_subscribe(
    communicator, catalog
):
    pen = catalog["Pen"]
    async with communicator() as client:
        reply = await client.request("attrs.unwatched.subscribe", {"id": pen.pk})
        assert reply["data"] == {"subscribed": True}
        await orm(save, Product, pen.pk, name="Red pen")
        assert await next_push(client) == {
            "event": "attrs.unwatched.retrieve",
            "data": {**row(pen), "name": "Red pen"},
        }


# -- DEFAULT_FIELDS_EXCLUDE ----------------------------------------------------


def user_fields(user):
    return {
        "id": user.pk,
        "password": user.password,
        "last_login": None,
        "is_superuser": False,
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": user.email,
        "is_staff": False,
        "is_active": True,
        "date_joined": user.date_joined.isoformat().replace("+00:00", "Z"),
        "groups": [],
        "user_permissions": [],
    }


@pytest.fixture
def note(user):
    return Note.objects.create(owner=user, text="buy milk", secret="1234")


async def test_default_fields_exclude_default_hides_only_password(
    communicator, user, note
):
    async with communicator() as client:
        got_user = await client.request("attrs.users.retrieve", {"id": user.pk})
        got_note = await client.request("attrs.notes.retrieve", {"id": note.pk})
    expected = user_fields(user)
    del expected["password"]
    assert got_user == {
        "event": "attrs.users.retrieve",
        "data": expected,
        "request_id": 1,
    }
    assert got_note["data"] == {
        "id": note.pk,
        "owner": user.pk,
        "text": "buy milk",
        "secret": "1234",
    }


@pytest.mark.parametrize("path", PATHS)
async def test_default_fields_exclude_setting_changes_the_fields(
    communicator, user, note, path
):
    hidden = ["password", "email", "secret", "date_joined", "no_such_field"]
    with override_settings(CHANNELS_BINDING={**ROOT, "DEFAULT_FIELDS_EXCLUDE": hidden}):
        async with communicator(path=path) as client:
            got_user = await client.request("attrs.users.retrieve", {"id": user.pk})
            got_note = await client.request("attrs.notes.retrieve", {"id": note.pk})
            listed = await client.request("attrs.notes.list")
    expected = user_fields(user)
    for name in ("password", "email", "date_joined"):
        del expected[name]
    assert got_user == {
        "event": "attrs.users.retrieve",
        "data": expected,
        "request_id": 1,
    }
    assert got_note == {
        "event": "attrs.notes.retrieve",
        "data": {"id": note.pk, "owner": user.pk, "text": "buy milk"},
        "request_id": 2,
    }
    assert listed["data"]["rows"] == [got_note["data"]]


async def test_default_fields_exclude_setting_applies_to_pushes(
    communicator, user, note
):
    with override_settings(
        CHANNELS_BINDING={**ROOT, "DEFAULT_FIELDS_EXCLUDE": ["text"]}
    ):
        async with communicator() as client:
            got = await client.request("attrs.notes.retrieve", {"id": note.pk})
            assert got["data"] == {"id": note.pk, "owner": user.pk, "secret": "1234"}
            await orm(save, Note, note.pk, secret="5678")
            assert await next_push(client) == {
                "event": "attrs.notes.retrieve",
                "data": {"id": note.pk, "owner": user.pk, "secret": "5678"},
            }


async def test_default_fields_exclude_is_read_again_after_an_override(
    communicator, user, note
):
    with override_settings(CHANNELS_BINDING={**ROOT, "DEFAULT_FIELDS_EXCLUDE": []}):
        async with communicator() as client:
            everything = await client.request("attrs.users.retrieve", {"id": user.pk})
    async with communicator() as client:
        default = await client.request("attrs.users.retrieve", {"id": user.pk})
    # An empty setting hides nothing (names that are not fields are ignored and
    # nothing else is added); back to the default, the password is hidden again.
    assert everything["data"] == user_fields(user)
    assert "password" not in default["data"]
    assert set(default["data"]) == set(user_fields(user)) - {"password"}


# -- MAX_FRAME_BYTES (default) -------------------------------------------------


def size_frame(size, filler="a"):
    """An ``attrs.tools.size`` frame of exactly ``size`` UTF-8 bytes, and the length
    of its blob in characters."""
    head = '{"event":"attrs.tools.size","request_id":"big","data":{"blob":"'
    tail = '"}}'
    room = size - len(head.encode()) - len(tail.encode())
    count, rest = divmod(room, len(filler.encode()))
    blob = filler * count + "a" * rest
    text = head + blob + tail
    assert len(text.encode()) == size
    return text, len(blob)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("size", [ONE_MIB - 1, ONE_MIB])
@pytest.mark.parametrize("filler", ["a", "é"])
async def test_frame_up_to_one_mib_is_answered(communicator, path, size, filler):
    text, length = size_frame(size, filler)
    async with communicator(path=path) as client:
        await client.send_to(text_data=text)
        reply = await client.receive_json_from(10)
    assert reply == {
        "event": "attrs.tools.size",
        "data": {"length": length},
        "request_id": "big",
    }


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("size", [ONE_MIB + 1, ONE_MIB + 4096])
@pytest.mark.parametrize("filler", ["a", "é"])
async def test_frame_over_one_mib_is_413(communicator, path, size, filler):
    text, _ = size_frame(size, filler)
    async with communicator(path=path) as client:
        await client.send_to(text_data=text)
        refused = await client.receive_json_from(10)
        # The connection stays open (docs/settings.rst, MAX_FRAME_BYTES).
        alive = await client.request("attrs.tools.size", {"blob": "xyz"})
    assert refused == {
        "event": None,
        "error": {
            "status": 413,
            "code": "too_large",
            "detail": f"Frame larger than {ONE_MIB} bytes.",
        },
    }
    assert alive == {
        "event": "attrs.tools.size",
        "data": {"length": 3},
        "request_id": 1,
    }


# -- request.request_id --------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("action", ["rid", "arid"])
@pytest.mark.parametrize(
    "request_id", [7, 0, -3, "abc-1", "", None, 2.5, [1, "x"], {"n": 1}]
)
async def test_handler_sees_the_frames_request_id(
    communicator, path, action, request_id
):
    event = f"attrs.tools.{action}"
    async with communicator(path=path) as client:
        await client.send_json_to({"event": event, "request_id": request_id})
        reply = await client.receive_json_from()
    assert reply == {
        "event": event,
        "data": {"request_id": request_id},
        "request_id": request_id,
    }


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("action", ["rid", "arid"])
async def test_handler_sees_none_without_a_request_id(communicator, path, action):
    event = f"attrs.tools.{action}#tag"
    async with communicator(path=path) as client:
        await client.send_json_to({"event": event, "data": {"x": 1}})
        reply = await client.receive_json_from()
    assert reply == {"event": event, "data": {"request_id": None}}


async def test_each_request_sees_its_own_request_id(communicator):
    async with communicator() as client:
        for request_id in ["a", "b", 3, "d"]:
            await client.send_json_to(
                {"event": "attrs.tools.rid", "request_id": request_id}
            )
        await client.send_json_to({"event": "attrs.tools.arid"})
        replies = [await client.receive_json_from() for _ in range(5)]
    seen = sorted(
        (repr(r.get("request_id", "-")), repr(r["data"]["request_id"])) for r in replies
    )
    assert seen == sorted(
        [
            ("'a'", "'a'"),
            ("'b'", "'b'"),
            ("3", "3"),
            ("'d'", "'d'"),
            ("'-'", "None"),
        ]
    )


@pytest.mark.parametrize("action", ["rid", "arid"])
def test_handler_sees_the_request_id_over_http_too(action):
    event = f"attrs.tools.{action}"
    client = APIClient()
    given = client.post(
        "/api/events/", {"event": event, "request_id": "h-1"}, format="json"
    )
    missing = client.post("/api/events/", {"event": event}, format="json")
    assert (given.status_code, given.json()) == (
        200,
        {"event": event, "data": {"request_id": "h-1"}, "request_id": "h-1"},
    )
    assert (missing.status_code, missing.json()) == (
        200,
        {"event": event, "data": {"request_id": None}},
    )


# -- "true" and "false" where booleans are meant ---------------------------------


@pytest.mark.parametrize(
    "filters, expected",
    [
        ({"in_stock": "TRUE"}, ["Hose", "Notebook", "Pen", "Shovel"]),
        ({"in_stock__in": ["false"]}, ["Eraser"]),
        ({"in_stock__in": ["true", "false"]}, None),  # every product
        ({"category__isnull": "true"}, None),  # no product has a category
        ({"category__isnull": "False"}, []),
        ({"category__isnull": True}, None),
    ],
)
async def test_booleans_spelled_as_strings(communicator, catalog, filters, expected):
    async with communicator() as client:
        reply = await client.request("attrs.booleans.list", {"filters": filters})
    every = sorted(catalog)
    assert sorted(names(reply)) == (every if expected is None else expected)


@pytest.mark.parametrize("value", ["maybe", 1, "1"])
async def test_isnull_takes_only_booleans(communicator, catalog, value):
    async with communicator() as client:
        reply = await client.request(
            "attrs.booleans.list", {"filters": {"category__isnull": value}}
        )
    assert reply["error"] == {
        "status": 400,
        "code": "invalid",
        "detail": {"category__isnull": ["Must be true or false."]},
    }
