"""The built-in events (SPEC section 4), custom events and permissions, over a
websocket, with exact payloads."""

import asyncio
import json
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model

from channels_binding.bindings import AsyncBinding
from channels_binding.registry import registry
from tests.shop.models import Category, Note, Product, Tag

pytestmark = pytest.mark.django_db(transaction=True)

PATHS = ["/ws/", "/ws/sync/"]
NOT_GIVEN = object()


def assert_error(frame, event, status, code, *, request_id=NOT_GIVEN):
    """``frame`` is exactly ``{"event", "error": {...}, "request_id"?}``."""
    keys = {"event", "error"}
    if request_id is not NOT_GIVEN:
        keys.add("request_id")
    assert set(frame) == keys, frame
    assert frame["event"] == event
    assert set(frame["error"]) == {"status", "code", "detail"}, frame
    assert (frame["error"]["status"], frame["error"]["code"]) == (status, code), frame
    if request_id is not NOT_GIVEN:
        assert frame["request_id"] == request_id
    return frame["error"]["detail"]


def assert_invalid(frame, event, key):
    """A 400 ``invalid`` whose detail is a field dict naming ``key``."""
    detail = assert_error(
        frame, event, 400, "invalid", request_id=frame.get("request_id")
    )
    assert isinstance(detail, dict) and key in detail, detail
    assert all(isinstance(message, str) for message in detail[key]), detail
    return detail


def product_data(product):
    """What ``shop.Product`` serializes to (ProductSerializer), read off the DB."""
    return {
        "id": product.pk,
        "name": product.name,
        "description": product.description,
        "price": f"{product.price:.2f}",
        "in_stock": product.in_stock,
        "category": (
            {"id": product.category.pk, "name": product.category.name}
            if product.category is not None
            else None
        ),
        "tags": sorted(tag.name for tag in product.tags.all()),
        "created": product.created.isoformat().replace("+00:00", "Z"),
    }


@sync_to_async
def product_rows(*names, pks=None):
    """Serialized products, by name (in the given order) or by pk."""
    if pks is None:
        pks = [Product.objects.get(name=name).pk for name in names]
    return [product_data(Product.objects.get(pk=pk)) for pk in pks]


def names(reply):
    return [row["name"] for row in reply["data"]["rows"]]


def count(model):
    return sync_to_async(model.objects.count)()


@pytest.fixture
def catalog(db):
    """Five products whose pk order differs from name and price order.

    pk order: Pen, Shovel, Eraser, Hose, Notebook. Pen and Eraser share a price.
    """
    office = Category.objects.create(name="Office")
    garden = Category.objects.create(name="Garden")
    blue = Tag.objects.create(name="blue")
    rows = [
        ("Pen", "1.50", office, "blue ink pen", True),
        ("Shovel", "25.00", garden, "steel blade", True),
        ("Eraser", "1.50", office, "rubber", False),
        ("Hose", "12.00", garden, "green garden hose", True),
        ("Notebook", "3.00", None, "paper pad with a blue cover", True),
    ]
    products = {}
    for name, price, category, description, in_stock in rows:
        products[name] = Product.objects.create(
            name=name,
            price=Decimal(price),
            category=category,
            description=description,
            in_stock=in_stock,
        )
    products["Pen"].tags.add(blue)
    return {"office": office, "garden": garden, "blue": blue, **products}


PK_ORDER = ["Pen", "Shovel", "Eraser", "Hose", "Notebook"]


# -- retrieve ------------------------------------------------------------------


async def test_retrieve(communicator, catalog):
    pen = catalog["Pen"]
    async with communicator() as client:
        reply = await client.request("shop.Product.retrieve", {"id": pen.pk})
    assert reply == {
        "event": "shop.Product.retrieve",
        "data": {
            "id": pen.pk,
            "name": "Pen",
            "description": "blue ink pen",
            "price": "1.50",
            "in_stock": True,
            "category": {"id": catalog["office"].pk, "name": "Office"},
            "tags": ["blue"],
            "created": pen.created.isoformat().replace("+00:00", "Z"),
        },
        "request_id": 1,
    }


async def test_retrieve_with_string_id(communicator, catalog):
    async with communicator() as client:
        reply = await client.request(
            "shop.Product.retrieve", {"id": str(catalog["Hose"].pk)}
        )
    assert reply["data"] == (await product_rows("Hose"))[0]


@pytest.mark.parametrize("missing", [999999, "999999", "abc", "1.5", "", 0, -1])
async def test_retrieve_missing_or_malformed_id_is_404(communicator, catalog, missing):
    async with communicator() as client:
        reply = await client.request("shop.Product.retrieve", {"id": missing})
    assert_error(reply, "shop.Product.retrieve", 404, "not_found", request_id=1)


@pytest.mark.parametrize("bad", [[1], {"id": 1}, True, False, 1.5, None])
async def test_retrieve_id_of_wrong_type_is_400(communicator, catalog, bad):
    async with communicator() as client:
        reply = await client.request("shop.Product.retrieve", {"id": bad})
    assert_invalid(reply, "shop.Product.retrieve", "id")


async def test_retrieve_without_id_is_400(communicator, catalog):
    async with communicator() as client:
        reply = await client.request("shop.Product.retrieve", {})
    detail = assert_invalid(reply, "shop.Product.retrieve", "id")
    assert detail == {"id": ["This field is required."]}


# -- list ----------------------------------------------------------------------


async def test_list(communicator, catalog):
    async with communicator() as client:
        reply = await client.request("shop.Product.list", {})
    assert reply == {
        "event": "shop.Product.list",
        "data": {
            "page": 1,
            "limit": 25,
            "count": 5,
            "rows": await product_rows(*PK_ORDER),
        },
        "request_id": 1,
    }


async def test_list_without_data(communicator, catalog):
    async with communicator() as client:
        reply = await client.request("shop.Product.list")
    assert names(reply) == PK_ORDER
    assert reply["data"]["count"] == 5


@sync_to_async
def make_products(n):
    Product.objects.bulk_create(
        Product(name=f"P{i:03d}", price=Decimal(i)) for i in range(n)
    )
    return list(Product.objects.order_by("pk").values_list("pk", flat=True))


async def test_default_limit_and_pages(communicator, db):
    pks = await make_products(30)
    async with communicator() as client:
        first = await client.request("shop.Product.list", {})
        second = await client.request("shop.Product.list", {"page": 2})
        third = await client.request("shop.Product.list", {"page": 3})
    assert {k: v for k, v in first["data"].items() if k != "rows"} == {
        "page": 1,
        "limit": 25,
        "count": 30,
    }
    assert [row["id"] for row in first["data"]["rows"]] == pks[:25]
    assert {k: v for k, v in second["data"].items() if k != "rows"} == {
        "page": 2,
        "limit": 25,
        "count": 30,
    }
    assert [row["id"] for row in second["data"]["rows"]] == pks[25:]
    assert_error(third, "shop.Product.list", 404, "not_found", request_id=3)


async def test_limit_above_max_is_lowered_to_100(communicator, db):
    pks = await make_products(105)
    async with communicator() as client:
        reply = await client.request("shop.Product.list", {"limit": 500})
        exact = await client.request("shop.Product.list", {"limit": 100, "page": 2})
    assert reply["data"]["limit"] == 100
    assert reply["data"]["count"] == 105
    assert [row["id"] for row in reply["data"]["rows"]] == pks[:100]
    assert exact["data"]["limit"] == 100
    assert [row["id"] for row in exact["data"]["rows"]] == pks[100:]


async def test_small_limit_pages_are_disjoint_and_complete(communicator, catalog):
    async with communicator() as client:
        pages = [
            await client.request("shop.Product.list", {"page": page, "limit": 2})
            for page in (1, 2, 3)
        ]
        past = await client.request("shop.Product.list", {"page": 4, "limit": 2})
    assert [reply["data"]["page"] for reply in pages] == [1, 2, 3]
    assert [reply["data"]["limit"] for reply in pages] == [2, 2, 2]
    assert [reply["data"]["count"] for reply in pages] == [5, 5, 5]
    assert [names(reply) for reply in pages] == [
        ["Pen", "Shovel"],
        ["Eraser", "Hose"],
        ["Notebook"],
    ]
    assert_error(past, "shop.Product.list", 404, "not_found", request_id=4)


@pytest.mark.parametrize("key", ["page", "limit"])
@pytest.mark.parametrize(
    "value", [0, -1, "x", "", "-1", 1.5, True, False, [1], {"n": 1}], ids=repr
)
async def test_bad_page_or_limit_is_400_naming_it(communicator, catalog, key, value):
    async with communicator() as client:
        reply = await client.request("shop.Product.list", {key: value})
        searched = await client.request("shop.Product.search", {key: value})
    assert_invalid(reply, "shop.Product.list", key)
    assert_invalid(searched, "shop.Product.search", key)


async def test_page_past_the_last_is_404(communicator, catalog):
    async with communicator() as client:
        reply = await client.request("shop.Product.list", {"page": 2})
        searched = await client.request(
            "shop.Product.search", {"page": 99, "query": "pen"}
        )
    assert_error(reply, "shop.Product.list", 404, "not_found", request_id=1)
    assert_error(searched, "shop.Product.search", 404, "not_found", request_id=2)


async def test_empty_first_page_is_fine(communicator, catalog):
    async with communicator() as client:
        listed = await client.request(
            "shop.Product.list", {"filters": {"price__gt": 999}}
        )
        searched = await client.request("shop.Product.search", {"query": "zzz"})
    assert listed["data"] == {"page": 1, "limit": 25, "count": 0, "rows": []}
    assert searched["data"] == {"page": 1, "limit": 25, "count": 0, "rows": []}


async def test_empty_table(communicator, db):
    async with communicator() as client:
        reply = await client.request("shop.Category.list")
    assert reply["data"] == {"page": 1, "limit": 25, "count": 0, "rows": []}


# -- ordering ------------------------------------------------------------------


@pytest.mark.parametrize(
    "ordering,expected",
    [
        ("name", ["Eraser", "Hose", "Notebook", "Pen", "Shovel"]),
        ("-name", ["Shovel", "Pen", "Notebook", "Hose", "Eraser"]),
        # Pen and Eraser tie on price: the primary key breaks the tie.
        ("price", ["Pen", "Eraser", "Notebook", "Hose", "Shovel"]),
        ("-price", ["Shovel", "Hose", "Notebook", "Pen", "Eraser"]),
        ("price,-name", ["Pen", "Eraser", "Notebook", "Hose", "Shovel"]),
        ("price,name", ["Eraser", "Pen", "Notebook", "Hose", "Shovel"]),
        ("-price, name", ["Shovel", "Hose", "Notebook", "Eraser", "Pen"]),
        (["price", "name"], ["Eraser", "Pen", "Notebook", "Hose", "Shovel"]),
        (["-price", "-name"], ["Shovel", "Hose", "Notebook", "Pen", "Eraser"]),
        ("created", PK_ORDER),
        ("", PK_ORDER),
        ([], PK_ORDER),
    ],
    ids=repr,
)
async def test_ordering(communicator, catalog, ordering, expected):
    async with communicator() as client:
        reply = await client.request("shop.Product.list", {"ordering": ordering})
        searched = await client.request(
            "shop.Product.search", {"ordering": ordering, "query": ""}
        )
    assert names(reply) == expected
    assert names(searched) == expected


@pytest.mark.parametrize(
    "ordering,field",
    [
        ("description", "description"),
        ("-description", "description"),
        ("category__name", "category__name"),
        ("name,description", "description"),
        (["price", "-in_stock"], "in_stock"),
        ("?", "?"),
        ("password", "password"),
    ],
)
async def test_undeclared_ordering_is_400_naming_it(
    communicator, catalog, ordering, field
):
    async with communicator() as client:
        reply = await client.request("shop.Product.list", {"ordering": ordering})
    detail = assert_invalid(reply, "shop.Product.list", "ordering")
    assert repr(field) in detail["ordering"][0]


@pytest.mark.parametrize("ordering", [5, {"name": 1}, [1], ["name", None]], ids=repr)
async def test_ordering_of_wrong_type_is_400(communicator, catalog, ordering):
    async with communicator() as client:
        reply = await client.request("shop.Product.list", {"ordering": ordering})
    assert_invalid(reply, "shop.Product.list", "ordering")


async def test_ordering_on_other_bindings(communicator, catalog, user, other_user):
    async with communicator() as client:
        categories = await client.request("shop.Category.list", {"ordering": "-name"})
        users = await client.request("auth.User.list", {"ordering": "-username"})
        bad = await client.request("auth.User.list", {"ordering": "email"})
    assert names(categories) == ["Office", "Garden"]
    assert [row["username"] for row in users["data"]["rows"]] == ["bob", "alice"]
    assert "'email'" in assert_invalid(bad, "auth.User.list", "ordering")["ordering"][0]


# -- filters -------------------------------------------------------------------


@pytest.mark.parametrize(
    "filters,expected",
    [
        ({"in_stock": False}, ["Eraser"]),
        ({"in_stock": True}, ["Pen", "Shovel", "Hose", "Notebook"]),
        ({"price__lt": 5}, ["Pen", "Eraser", "Notebook"]),
        ({"price__lt": "5.00"}, ["Pen", "Eraser", "Notebook"]),
        ({"price__gt": 10}, ["Shovel", "Hose"]),
        ({"price": "1.50"}, ["Pen", "Eraser"]),
        ({"price": 12}, ["Hose"]),
        ({"category": "office"}, ["Pen", "Eraser"]),
        ({"category": None}, ["Notebook"]),
        ({"category__in": ["office", "garden"]}, ["Pen", "Shovel", "Eraser", "Hose"]),
        ({"category__in": ["garden"]}, ["Shovel", "Hose"]),
        ({"category__in": []}, []),
        ({"category": "garden", "price__lt": 20}, ["Hose"]),
        (
            {"price__gt": 1, "price__lt": 13, "in_stock": True},
            ["Pen", "Hose", "Notebook"],
        ),
    ],
    ids=repr,
)
async def test_filters(communicator, catalog, filters, expected):
    def resolve(value):
        if isinstance(value, list):
            return [resolve(item) for item in value]
        return catalog[value].pk if value in ("office", "garden") else value

    filters = {key: resolve(value) for key, value in filters.items()}
    async with communicator() as client:
        reply = await client.request("shop.Product.list", {"filters": filters})
        searched = await client.request("shop.Product.search", {"filters": filters})
    assert names(reply) == expected
    assert reply["data"]["count"] == len(expected)
    assert names(searched) == expected


@pytest.mark.parametrize(
    "key",
    [
        "name",
        "category__name",
        "description__icontains",
        "price__lte",
        "in_stock__in",
        "id",
        "tags__name",
        "category__in__x",
    ],
)
async def test_undeclared_filter_is_400_naming_it(communicator, catalog, key):
    async with communicator() as client:
        reply = await client.request("shop.Product.list", {"filters": {key: "x"}})
    detail = assert_invalid(reply, "shop.Product.list", key)
    assert repr(key) in detail[key][0]


@pytest.mark.parametrize(
    "filters,key",
    [
        ({"price__lt": "abc"}, "price__lt"),
        ({"price": "1.2.3"}, "price"),
        ({"category": "abc"}, "category"),
        ({"category__in": ["abc"]}, "category__in"),
        ({"category__in": [[1]]}, "category__in"),
        ({"in_stock": "maybe"}, "in_stock"),
        ({"price__lt": [1, 2]}, "price__lt"),
        ({"price": {"gt": 1}}, "price"),
    ],
    ids=repr,
)
async def test_bad_filter_value_is_400(communicator, catalog, filters, key):
    async with communicator() as client:
        reply = await client.request("shop.Product.list", {"filters": filters})
    assert_invalid(reply, "shop.Product.list", key)


@pytest.mark.parametrize("filters", [[1], "in_stock", 5, True], ids=repr)
async def test_filters_not_an_object_is_400(communicator, catalog, filters):
    async with communicator() as client:
        reply = await client.request("shop.Product.list", {"filters": filters})
    assert_invalid(reply, "shop.Product.list", "filters")


async def test_binding_without_filter_fields_refuses_every_filter(
    communicator, catalog
):
    async with communicator() as client:
        reply = await client.request(
            "shop.Category.list", {"filters": {"name": "Office"}}
        )
    assert_invalid(reply, "shop.Category.list", "name")


# -- search --------------------------------------------------------------------


@pytest.mark.parametrize(
    "query,expected",
    [
        ("blue", ["Pen", "Notebook"]),
        ("BLUE", ["Pen", "Notebook"]),
        # Every word must match; each may match any search field.
        ("blue pen", ["Pen"]),
        ("pen blue", ["Pen"]),
        ("steel shovel", ["Shovel"]),
        ("garden hose", ["Hose"]),
        ("blue, cover", ["Notebook"]),
        ("blue steel", []),
        ("nothing-like-this", []),
        ("", PK_ORDER),
        ("   ", PK_ORDER),
    ],
)
async def test_search(communicator, catalog, query, expected):
    async with communicator() as client:
        reply = await client.request("shop.Product.search", {"query": query})
    assert reply["event"] == "shop.Product.search"
    assert set(reply["data"]) == {"page", "limit", "count", "rows"}
    assert (reply["data"]["page"], reply["data"]["limit"]) == (1, 25)
    assert names(reply) == expected
    assert reply["data"]["count"] == len(expected)


async def test_search_rows_and_combination(communicator, catalog):
    async with communicator() as client:
        reply = await client.request(
            "shop.Product.search",
            {"query": "blue", "ordering": "-name", "filters": {"in_stock": True}},
        )
        paged = await client.request(
            "shop.Product.search", {"query": "blue", "limit": 1, "page": 2}
        )
    assert reply["data"] == {
        "page": 1,
        "limit": 25,
        "count": 2,
        "rows": await product_rows("Pen", "Notebook"),
    }
    assert paged["data"] == {
        "page": 2,
        "limit": 1,
        "count": 2,
        "rows": await product_rows("Notebook"),
    }


async def test_list_ignores_query(communicator, catalog):
    async with communicator() as client:
        reply = await client.request("shop.Product.list", {"query": "blue"})
    assert names(reply) == PK_ORDER


@pytest.mark.parametrize("query", [5, ["blue"], {"q": "blue"}, True], ids=repr)
async def test_search_with_non_string_query_is_400(communicator, catalog, query):
    async with communicator() as client:
        reply = await client.request("shop.Product.search", {"query": query})
    assert_invalid(reply, "shop.Product.search", "query")


async def test_search_on_other_bindings(communicator, catalog, user, other_user):
    async with communicator() as client:
        users = await client.request("auth.User.search", {"query": "alice"})
        by_email = await client.request("auth.User.search", {"query": "example.com"})
        categories = await client.request("shop.Category.search", {"query": "off"})
    assert users["data"] == {
        "page": 1,
        "limit": 25,
        "count": 1,
        "rows": [{"id": user.pk, "username": "alice", "email": "alice@example.com"}],
    }
    assert [row["username"] for row in by_email["data"]["rows"]] == ["alice", "bob"]
    assert categories["data"]["rows"] == [
        {"id": catalog["office"].pk, "name": "Office"}
    ]


async def test_search_on_binding_without_search_fields(communicator, user):
    # Note declares no search_fields: a query cannot be answered, so it is refused
    # rather than silently ignored; no query behaves like list. Tag disables search.
    await sync_to_async(Note.objects.create)(owner=user, text="hello")
    async with communicator(user) as client:
        refused = await client.request("shop.Note.search", {"query": "hello"})
        plain = await client.request("shop.Note.search", {})
        tag = await client.request("shop.Tag.search", {"query": "x"})
    assert_invalid(refused, "shop.Note.search", "query")
    assert plain["data"]["count"] == 1
    assert_error(tag, "shop.Tag.search", 405, "method_not_allowed", request_id=3)


# -- create --------------------------------------------------------------------


async def test_create(communicator, catalog, user):
    before = await count(Product)
    async with communicator(user) as client:
        reply = await client.request(
            "shop.Product.create",
            {
                "name": "Lamp",
                "price": "9.99",
                "category_id": catalog["office"].pk,
                "tags": ["blue"],
            },
        )
    assert await count(Product) == before + 1
    expected = (await product_rows("Lamp"))[0]
    assert expected["category"] == {"id": catalog["office"].pk, "name": "Office"}
    assert expected["tags"] == ["blue"]
    assert expected["price"] == "9.99"
    assert reply == {"event": "shop.Product.create", "data": expected, "request_id": 1}


async def test_create_ignores_read_only_id(communicator, catalog, user):
    async with communicator(user) as client:
        reply = await client.request(
            "shop.Product.create", {"id": catalog["Pen"].pk, "name": "Cup", "price": 2}
        )
    assert reply["data"]["id"] != catalog["Pen"].pk
    assert reply["data"] == (await product_rows("Cup"))[0]
    await sync_to_async(catalog["Pen"].refresh_from_db)()
    assert catalog["Pen"].name == "Pen"


@pytest.mark.parametrize(
    "data,detail",
    [
        (
            {},
            {
                "name": ["This field is required."],
                "price": ["This field is required."],
            },
        ),
        ({"name": "Cup", "price": "-1"}, {"price": ["Price cannot be negative."]}),
        ({"name": "Cup", "price": "abc"}, {"price": ["A valid number is required."]}),
        (
            {"name": "x" * 101, "price": 1},
            {"name": ["Ensure this field has no more than 100 characters."]},
        ),
        (
            {"name": "Cup", "price": 1, "tags": ["nope"]},
            {"tags": ["Object with name=nope does not exist."]},
        ),
        (
            {"name": "Cup", "price": 1, "category_id": 999999},
            {"category_id": ['Invalid pk "999999" - object does not exist.']},
        ),
    ],
    ids=["missing", "negative", "not-a-number", "too-long", "bad-tag", "bad-category"],
)
async def test_create_validation_error(communicator, catalog, user, data, detail):
    before = await count(Product)
    async with communicator(user) as client:
        reply = await client.request("shop.Product.create", data)
    assert reply == {
        "event": "shop.Product.create",
        "error": {"status": 400, "code": "invalid", "detail": detail},
        "request_id": 1,
    }
    assert await count(Product) == before


# -- update --------------------------------------------------------------------


async def test_update_is_partial(communicator, catalog, user):
    pen = catalog["Pen"]
    async with communicator(user) as client:
        reply = await client.request(
            "shop.Product.update", {"id": pen.pk, "price": "2.00"}
        )
    expected = (await product_rows("Pen"))[0]
    assert expected["price"] == "2.00"
    assert expected["description"] == "blue ink pen"
    assert expected["tags"] == ["blue"]
    assert reply == {"event": "shop.Product.update", "data": expected, "request_id": 1}


async def test_update_missing_is_404(communicator, catalog, user):
    async with communicator(user) as client:
        reply = await client.request("shop.Product.update", {"id": 999999, "name": "X"})
        malformed = await client.request(
            "shop.Product.update", {"id": "abc", "name": "X"}
        )
    assert_error(reply, "shop.Product.update", 404, "not_found", request_id=1)
    assert_error(malformed, "shop.Product.update", 404, "not_found", request_id=2)
    assert not await sync_to_async(Product.objects.filter(name="X").exists)()


async def test_update_validation_error(communicator, catalog, user):
    pen = catalog["Pen"]
    async with communicator(user) as client:
        reply = await client.request(
            "shop.Product.update", {"id": pen.pk, "price": "-3", "name": "Free pen"}
        )
    assert reply == {
        "event": "shop.Product.update",
        "error": {
            "status": 400,
            "code": "invalid",
            "detail": {"price": ["Price cannot be negative."]},
        },
        "request_id": 1,
    }
    assert (await product_rows("Pen"))[0]["price"] == "1.50"


# -- save ----------------------------------------------------------------------


async def test_save_updates_existing(communicator, catalog, user):
    pen = catalog["Pen"]
    before = await count(Product)
    async with communicator(user) as client:
        reply = await client.request(
            "shop.Product.save", {"id": pen.pk, "name": "Blue pen"}
        )
    assert reply == {
        "event": "shop.Product.save",
        "data": {"success": True, "id": pen.pk},
        "request_id": 1,
    }
    await sync_to_async(pen.refresh_from_db)()
    assert (pen.name, pen.price) == ("Blue pen", Decimal("1.50"))
    assert await count(Product) == before


async def test_save_without_id_creates(communicator, catalog, user):
    before = set(
        await sync_to_async(list)(Product.objects.values_list("pk", flat=True))
    )
    async with communicator(user) as client:
        reply = await client.request(
            "shop.Product.save", {"name": "Cup", "price": "4.00"}
        )
    cup = await sync_to_async(Product.objects.get)(name="Cup")
    assert cup.pk not in before
    assert cup.price == Decimal("4.00")
    assert reply == {
        "event": "shop.Product.save",
        "data": {"success": True, "id": cup.pk},
        "request_id": 1,
    }


@pytest.mark.parametrize("missing", [999999, "abc"])
async def test_save_with_unknown_id_creates(communicator, catalog, user, missing):
    before = await count(Product)
    async with communicator(user) as client:
        reply = await client.request(
            "shop.Product.save", {"id": missing, "name": "Cup", "price": "4.00"}
        )
    cup = await sync_to_async(Product.objects.get)(name="Cup")
    assert reply["data"] == {"success": True, "id": cup.pk}
    assert cup.pk != 999999
    assert await count(Product) == before + 1


@pytest.mark.parametrize(
    "data,detail",
    [
        ({"id": "pen", "price": "-5"}, {"price": ["Price cannot be negative."]}),
        ({"name": "Cup"}, {"price": ["This field is required."]}),
        ({"id": 999999, "name": "Cup"}, {"price": ["This field is required."]}),
    ],
    ids=["update", "create", "create-unknown-id"],
)
async def test_save_validation_error(communicator, catalog, user, data, detail):
    if data.get("id") == "pen":
        data = {**data, "id": catalog["Pen"].pk}
    before = await count(Product)
    async with communicator(user) as client:
        reply = await client.request("shop.Product.save", data)
    assert reply == {
        "event": "shop.Product.save",
        "error": {"status": 400, "code": "invalid", "detail": detail},
        "request_id": 1,
    }
    assert await count(Product) == before
    assert (await product_rows("Pen"))[0]["price"] == "1.50"


# -- delete --------------------------------------------------------------------


async def test_delete(communicator, catalog, user):
    pen = catalog["Pen"]
    async with communicator(user) as client:
        reply = await client.request("shop.Product.delete", {"id": pen.pk})
        again = await client.request("shop.Product.delete", {"id": pen.pk})
    assert reply == {
        "event": "shop.Product.delete",
        "data": {"success": True, "id": pen.pk},
        "request_id": 1,
    }
    assert_error(again, "shop.Product.delete", 404, "not_found", request_id=2)
    assert not await sync_to_async(Product.objects.filter(pk=pen.pk).exists)()
    assert await count(Product) == 4


async def test_delete_malformed_id_is_404(communicator, catalog, user):
    async with communicator(user) as client:
        reply = await client.request("shop.Product.delete", {"id": "abc"})
        empty = await client.request("shop.Product.delete", {})
    assert_error(reply, "shop.Product.delete", 404, "not_found", request_id=1)
    assert assert_invalid(empty, "shop.Product.delete", "id") == {
        "id": ["This field is required."]
    }
    assert await count(Product) == 5


# -- custom events -------------------------------------------------------------


async def test_sync_custom_event(communicator, catalog, user):
    async with communicator() as anonymous, communicator(user) as alice:
        anon_reply = await anonymous.request("shop.Product.stats")
        alice_reply = await alice.request("shop.Product.stats#x", {"ignored": 1})
    assert anon_reply == {
        "event": "shop.Product.stats",
        "data": {"count": 5, "user": None},
        "request_id": 1,
    }
    assert alice_reply == {
        "event": "shop.Product.stats#x",
        "data": {"count": 5, "user": "alice"},
        "request_id": 1,
    }


async def test_async_custom_event_sees_hash_and_data(communicator):
    data = {"x": [1, 2, {"y": None}], "s": "é"}
    async with communicator() as client:
        reply = await client.request("shop.Product.echo#h1", data)
        plain = await client.request("shop.Product.echo")
    assert reply == {
        "event": "shop.Product.echo#h1",
        "data": {"data": data, "hash": "h1", "event": "shop.Product.echo#h1"},
        "request_id": 1,
    }
    assert plain["data"] == {"data": {}, "hash": None, "event": "shop.Product.echo"}


async def test_custom_event_on_model_less_stream(communicator):
    async with communicator() as client:
        reply = await client.request("tools.add", {"a": 2, "b": 40})
        invalid = await client.request("tools.add", {"a": "2", "b": 40})
    assert reply == {"event": "tools.add", "data": {"sum": 42}, "request_id": 1}
    assert invalid == {
        "event": "tools.add",
        "error": {
            "status": 400,
            "code": "invalid",
            "detail": {"a": ["Send two integers a and b."]},
        },
        "request_id": 2,
    }


async def test_whoami(communicator, user):
    async with communicator() as anonymous, communicator(user) as alice:
        anon_reply = await anonymous.request("tools.whoami")
        alice_reply = await alice.request("tools.whoami")
    assert anon_reply["data"] == {"user_id": None, "transport": "websocket"}
    assert alice_reply["data"] == {"user_id": user.pk, "transport": "websocket"}


async def test_custom_event_permission_classes(communicator, user, staff_user):
    async with (
        communicator() as anonymous,
        communicator(user) as alice,
        communicator(staff_user) as staff,
    ):
        anon_reply = await anonymous.request("shop.Product.admin_only")
        alice_reply = await alice.request("shop.Product.admin_only")
        staff_reply = await staff.request("shop.Product.admin_only")
    assert_error(
        anon_reply, "shop.Product.admin_only", 401, "not_authenticated", request_id=1
    )
    assert_error(
        alice_reply, "shop.Product.admin_only", 403, "permission_denied", request_id=1
    )
    assert staff_reply == {
        "event": "shop.Product.admin_only",
        "data": {"ok": True},
        "request_id": 1,
    }


async def test_custom_write_event_needs_authentication(communicator, catalog, user):
    async with communicator() as anonymous:
        refused = await anonymous.request("shop.Product.restock")
    assert_error(
        refused, "shop.Product.restock", 401, "not_authenticated", request_id=1
    )
    assert await sync_to_async(Product.objects.filter(in_stock=False).count)() == 1
    async with communicator(user) as alice:
        reply = await alice.request("shop.Product.restock")
    assert reply["data"] == {"updated": 5}
    assert await sync_to_async(Product.objects.filter(in_stock=False).count)() == 0


# -- default permissions -------------------------------------------------------


async def test_anonymous_may_read(communicator, catalog):
    pen = catalog["Pen"]
    async with communicator() as client:
        retrieve = await client.request("shop.Product.retrieve", {"id": pen.pk})
        listed = await client.request("shop.Product.list")
        searched = await client.request("shop.Product.search", {"query": "pen"})
    assert retrieve["data"]["id"] == pen.pk
    assert listed["data"]["count"] == 5
    assert names(searched) == ["Pen"]


ANONYMOUS_WRITES = [
    ("create", {"name": "Cup", "price": "1.00"}),
    ("update", {"id": "pen", "name": "Hacked"}),
    ("save", {"id": "pen", "name": "Hacked"}),
    ("save", {"name": "Cup", "price": "1.00"}),
    ("delete", {"id": "pen"}),
    ("update", {"id": 999999, "name": "Hacked"}),
]


@pytest.mark.parametrize("action,data", ANONYMOUS_WRITES, ids=repr)
async def test_anonymous_may_not_write(communicator, catalog, action, data):
    if data.get("id") == "pen":
        data = {**data, "id": catalog["Pen"].pk}
    rows_before = await product_rows(pks=[catalog[name].pk for name in PK_ORDER])
    async with communicator() as client:
        reply = await client.request(f"shop.Product.{action}", data)
    assert_error(
        reply, f"shop.Product.{action}", 401, "not_authenticated", request_id=1
    )
    assert await count(Product) == 5
    assert (
        await product_rows(pks=[catalog[name].pk for name in PK_ORDER]) == rows_before
    )


# -- per-user visibility -------------------------------------------------------


@pytest.fixture
def notes(user, other_user):
    return {
        "alice1": Note.objects.create(owner=user, text="alice one", secret="s1"),
        "bob1": Note.objects.create(owner=other_user, text="bob one", secret="s2"),
        "alice2": Note.objects.create(owner=user, text="alice two", secret="s3"),
    }


async def test_list_shows_only_own_notes(communicator, notes, user, other_user):
    async with communicator(user) as alice, communicator(other_user) as bob:
        alice_list = await alice.request("shop.Note.list")
        bob_list = await bob.request("shop.Note.list")
    assert alice_list["data"] == {
        "page": 1,
        "limit": 25,
        "count": 2,
        "rows": [
            {"id": notes["alice1"].pk, "text": "alice one", "owner": user.pk},
            {"id": notes["alice2"].pk, "text": "alice two", "owner": user.pk},
        ],
    }
    assert bob_list["data"]["rows"] == [
        {"id": notes["bob1"].pk, "text": "bob one", "owner": other_user.pk}
    ]


async def test_other_users_note_is_404(communicator, notes, other_user):
    note = notes["alice1"]
    async with communicator(other_user) as bob:
        retrieve = await bob.request("shop.Note.retrieve", {"id": note.pk})
        hashed = await bob.request(f"shop.Note.retrieve#{note.pk}")
        update = await bob.request("shop.Note.update", {"id": note.pk, "text": "mine"})
        delete = await bob.request("shop.Note.delete", {"id": note.pk})
        save = await bob.request("shop.Note.save", {"id": note.pk, "text": "mine"})
    assert_error(retrieve, "shop.Note.retrieve", 404, "not_found", request_id=1)
    assert_error(
        hashed, f"shop.Note.retrieve#{note.pk}", 404, "not_found", request_id=2
    )
    assert_error(update, "shop.Note.update", 404, "not_found", request_id=3)
    assert_error(delete, "shop.Note.delete", 404, "not_found", request_id=4)
    # save cannot see alice's note, so it is not an update of it.
    assert save["data"]["id"] != note.pk
    await sync_to_async(note.refresh_from_db)()
    assert (note.text, note.owner_id) == ("alice one", notes["alice1"].owner_id)


async def test_own_note_can_be_read_and_changed(communicator, notes, user):
    note = notes["alice2"]
    async with communicator(user) as alice:
        retrieve = await alice.request("shop.Note.retrieve", {"id": note.pk})
        update = await alice.request(
            "shop.Note.update", {"id": note.pk, "text": "edited"}
        )
    assert retrieve["data"] == {"id": note.pk, "text": "alice two", "owner": user.pk}
    assert update["data"] == {"id": note.pk, "text": "edited", "owner": user.pk}


@pytest.mark.parametrize("action", ["list", "retrieve", "search", "create", "delete"])
async def test_notes_need_authentication(communicator, notes, action):
    async with communicator() as anonymous:
        reply = await anonymous.request(
            f"shop.Note.{action}", {"id": notes["alice1"].pk, "text": "x"}
        )
    assert_error(reply, f"shop.Note.{action}", 401, "not_authenticated", request_id=1)
    assert await count(Note) == 3


async def test_note_owner_is_read_only(communicator, notes, user, other_user):
    async with communicator(user) as alice:
        reply = await alice.request(
            "shop.Note.create", {"text": "new", "owner": other_user.pk}
        )
        update = await alice.request(
            "shop.Note.update", {"id": notes["alice1"].pk, "owner": other_user.pk}
        )
    note = await sync_to_async(Note.objects.get)(text="new")
    assert note.owner_id == user.pk
    assert reply["data"] == {"id": note.pk, "text": "new", "owner": user.pk}
    assert update["data"]["owner"] == user.pk
    assert await sync_to_async(Note.objects.filter(owner=other_user).count)() == 1


async def test_password_is_never_served(communicator, user, other_user):
    async with communicator() as client:
        await client.send_json_to(
            {"event": "auth.User.retrieve", "data": {"id": user.pk}, "request_id": 1}
        )
        text = await client.receive_from()
        listed = await client.request("auth.User.list")
    assert "password" not in text and user.password not in text
    assert set(listed["data"]["rows"][0]) == {"id", "username", "email"}
    assert json.loads(text)["data"] == {
        "id": user.pk,
        "username": "alice",
        "email": "alice@example.com",
    }


@pytest.fixture
def bare_user_binding():
    """A binding with only ``model``: its fields come from the defaults."""

    class BareUserBinding(AsyncBinding):
        model = get_user_model()
        stream = "tests.BareUser"

    yield BareUserBinding
    registry.unregister("tests.BareUser")


async def test_password_excluded_by_default(communicator, bare_user_binding, user):
    async with communicator() as client:
        await client.send_json_to({"event": f"tests.BareUser.retrieve#{user.pk}"})
        text = await client.receive_from()
    data = json.loads(text)["data"]
    assert "password" not in data and user.password not in text
    assert (data["id"], data["username"], data["email"]) == (
        user.pk,
        "alice",
        "alice@example.com",
    )
    assert data["is_staff"] is False


# -- both consumers ------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
async def test_both_consumers(communicator, catalog, user, path):
    pen = catalog["Pen"]
    async with communicator(user, path=path) as client:
        retrieve = await client.request("shop.Product.retrieve", {"id": pen.pk})
        listed = await client.request(
            "shop.Product.list", {"ordering": "name", "limit": 2}
        )
        created = await client.request(
            "shop.Product.create", {"name": "Cup", "price": 3}
        )
        error = await client.request(
            "shop.Product.create", {"name": "Cup", "price": -3}
        )
        echo = await client.request("shop.Product.echo#e", {"n": 1})
        stats = await client.request("shop.Product.stats")
    assert retrieve["data"] == (await product_rows("Pen"))[0]
    assert listed["data"] == {
        "page": 1,
        "limit": 2,
        "count": 5,
        "rows": await product_rows("Eraser", "Hose"),
    }
    assert created["data"] == (await product_rows("Cup"))[0]
    assert error == {
        "event": "shop.Product.create",
        "error": {
            "status": 400,
            "code": "invalid",
            "detail": {"price": ["Price cannot be negative."]},
        },
        "request_id": 4,
    }
    assert echo["data"] == {
        "data": {"n": 1},
        "hash": "e",
        "event": "shop.Product.echo#e",
    }
    assert stats["data"] == {"count": 6, "user": "alice"}


# -- concurrency ---------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
async def test_twenty_requests_in_flight(communicator, catalog, path):
    pks = [catalog[name].pk for name in PK_ORDER]
    requests = {}
    for i in range(20):
        kind = i % 4
        if kind == 0:
            requests[f"r{i}"] = ("shop.Product.retrieve", {"id": pks[i % 5]})
        elif kind == 1:
            requests[f"r{i}"] = ("shop.Product.echo", {"i": i})
        elif kind == 2:
            requests[f"r{i}"] = ("tools.add", {"a": i, "b": 1})
        else:
            requests[f"r{i}"] = ("shop.Product.list", {"limit": 1, "page": 1 + i % 5})
    async with communicator(path=path) as client:
        for request_id, (event, data) in requests.items():
            await client.send_json_to(
                {"event": event, "data": data, "request_id": request_id}
            )
        replies = [await client.receive_json_from(timeout=5) for _ in requests]
    assert sorted(reply["request_id"] for reply in replies) == sorted(requests)
    for reply in replies:
        i = int(reply["request_id"][1:])
        event, data = requests[reply["request_id"]]
        assert reply["event"] == event
        if i % 4 == 0:
            assert reply["data"]["id"] == pks[i % 5]
        elif i % 4 == 1:
            assert reply["data"]["data"] == {"i": i}
        elif i % 4 == 2:
            assert reply["data"] == {"sum": i + 1}
        else:
            assert [row["id"] for row in reply["data"]["rows"]] == [pks[i % 5]]


async def test_concurrent_gather_from_many_clients(communicator, catalog):
    async def one(i):
        async with communicator() as client:
            reply = await client.request("tools.add", {"a": i, "b": i})
            return reply["data"]["sum"]

    assert await asyncio.gather(*(one(i) for i in range(5))) == [0, 2, 4, 6, 8]
