"""Per-connection weight limits (docs/settings.rst, "Connections"), over real frames
and HTTP: ``MAX_QUERY_LENGTH`` and ``MAX_FILTER_VALUE_LENGTH`` (400 naming the
field), ``MAX_COLLECTION_WATCHES`` / ``ANONYMOUS_MAX_COLLECTION_WATCHES`` and
``MAX_COLLECTION_LOOKUPS`` (429), ``MAX_SUBSCRIPTION_BYTES`` (413).

Each refusal is checked for its exact frame, for a socket that answers the next
request, and for a watch that was not made: after the change it would have been
pushed, the marker product changes, and the next frame must be the marker's (the
hub handles changes in order, so this cannot pass by waiting too little). The
defaults are tested as they are, so a test fails when its limit is removed.

The last test is the attack that made these limits: one anonymous socket against a
real daphne process, with 300 searches of 900 KB queries and then every watch the
limits allow; the process may grow by 64 MiB at most, and another user's list
watcher must still get an ORM save's push within half a second.
"""

import json
import time

import pytest
from asgiref.sync import sync_to_async
from django.core.checks import run_checks
from django.test import override_settings
from rest_framework.test import APIClient

from channels_binding.bindings import AsyncBinding
from channels_binding.live.limits import SEEN_ROW_BYTES, SUBSCRIPTION_BYTES
from channels_binding.live.subscriptions import Subscription
from channels_binding.registry import registry
from channels_binding.settings import DEFAULTS
from tests.servers import asgi_process, django_admin, redis_server, server_env
from tests.shop.models import Category, Product
from tests.test_live import make_product, next_push, orm, save
from tests.test_multiprocess import receive, request

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = {"BINDINGS_MODULES": ["tests.root_bindings"]}
PATHS = ["/ws/", "/ws/sync/"]


def limits(**settings):
    return override_settings(CHANNELS_BINDING={**ROOT, **settings})


def too_long(limit, length):
    return f"Ensure this value has at most {limit} characters (it has {length})."


def refused(event, request_id, status, code, detail):
    return {
        "event": event,
        "error": {"status": status, "code": code, "detail": detail},
        "request_id": request_id,
    }


def too_many_watches(limit):
    return (
        f"Too many collection watches ({limit}) on this connection: unsubscribe "
        "from some first."
    )


def too_many_lookups(limit):
    return (
        f"The collection watches of this connection would check each change with "
        f"more than {limit} lookups (a filter is one, a search word one per search "
        "field): unsubscribe from some first, or use fewer words."
    )


def too_large(limit):
    return (
        f"The subscriptions of this connection would take more than {limit} bytes: "
        "unsubscribe from some first."
    )


class Marker:
    """A category the client watches by id: its change, made after one that must
    not be pushed, must be the next frame. (A category, so that no watched list
    of products has it.)"""

    def __init__(self, client):
        self.client = client
        self.count = 0

    async def watch(self):
        self.category = await orm(Category.objects.create, name="marker")
        reply = await self.client.request(
            "shop.Category.retrieve#marker", {"id": self.category.pk}
        )
        assert reply["data"]["name"] == "marker", reply

    async def assert_next(self):
        """Change the marker; the next push must be its ``retrieve``."""
        self.count += 1
        name = f"marker {self.count}"
        await orm(save, Category, self.category.pk, name=name)
        push = await next_push(self.client)
        assert push == {
            "event": "shop.Category.retrieve#marker",
            "data": {"id": self.category.pk, "name": name},
        }, push


async def still_answers(client):
    reply = await client.request("ping")
    assert reply["event"] == "pong", reply


# -- MAX_QUERY_LENGTH --------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("action", ["search", "subscribe"])
async def test_a_query_longer_than_the_limit_is_a_400_naming_query(
    communicator, path, action
):
    limit = DEFAULTS["MAX_QUERY_LENGTH"]
    pen = await orm(make_product, name="pen")
    query = ("pen " * limit)[: limit + 1]  # every word matches "pen"
    async with communicator(path=path) as client:
        marker = Marker(client)
        await marker.watch()
        reply = await client.request(f"shop.Product.{action}#long", {"query": query})
        assert reply == refused(
            f"shop.Product.{action}#long",
            2,
            400,
            "invalid",
            {"query": [too_long(limit, limit + 1)]},
        )
        await still_answers(client)
        # nothing watches the query: a change of the pen it matches is not pushed
        await orm(save, Product, pen.pk, name="pen pen")
        await marker.assert_next()
        # one character less is a query like any other, and watches
        reply = await client.request(
            f"shop.Product.{action}#long", {"query": query[:limit]}
        )
        assert "error" not in reply, reply
        await orm(save, Product, pen.pk, name="pen")
        push = await next_push(client)
        assert (push["event"], push["data"]["id"]) == (
            "shop.Product.retrieve#long",
            pen.pk,
        )


async def test_a_blank_query_counts_too(communicator):
    limit = DEFAULTS["MAX_QUERY_LENGTH"]
    async with communicator() as client:
        reply = await client.request("shop.Product.search", {"query": " " * 900_000})
        assert reply["error"]["detail"] == {"query": [too_long(limit, 900_000)]}


# -- MAX_FILTER_VALUE_LENGTH -------------------------------------------------------


def ones(count):
    """``count`` ones: a list spelled ``1,1,...``, ``2 * count - 1`` characters."""
    return [1] * count


@pytest.mark.parametrize("path", PATHS)
async def test_a_filter_value_longer_than_the_limit_is_a_400_naming_the_filter(
    communicator, path
):
    limit = DEFAULTS["MAX_FILTER_VALUE_LENGTH"]
    product = await orm(make_product, name="pen")
    cases = [
        ("category", "1" * (limit + 1), limit + 1),
        ("price__lt", "9" * (limit + 1), limit + 1),
        # a list counts as its query string spelling, items joined by commas:
        # many short items ...
        ("category__in", ones(limit // 2 + 1), 2 * (limit // 2 + 1) - 1),
        # ... or one long one
        ("category__in", ["1" * limit, 1], limit + 2),
    ]
    async with communicator(path=path) as client:
        marker = Marker(client)
        await marker.watch()
        for number, (key, value, length) in enumerate(cases, start=2):
            reply = await client.request(
                f"shop.Product.list#f{number}", {"filters": {key: value}}
            )
            assert reply == refused(
                f"shop.Product.list#f{number}",
                number,
                400,
                "invalid",
                {key: [too_long(limit, length)]},
            )
        await still_answers(client)
        await orm(save, Product, product.pk, name="pen 2")
        await marker.assert_next()
        # at the limit, a value is a value
        for key, value in [
            ("price__lt", "9" * limit),
            ("category__in", ones((limit + 1) // 2)),
        ]:
            reply = await client.request("shop.Product.list", {"filters": {key: value}})
            assert "error" not in reply, reply


async def test_a_query_or_filter_too_long_is_the_same_400_over_http(communicator):
    limit = DEFAULTS["MAX_QUERY_LENGTH"]
    value = DEFAULTS["MAX_FILTER_VALUE_LENGTH"]
    client = APIClient()
    query = "a" * (limit + 1)
    items = ",".join(["1"] * (value // 2 + 1))
    cases = [
        (
            "get",
            f"/api/shop/Product/?query={query}",
            "shop.Product.search",
            {"query": [too_long(limit, limit + 1)]},
        ),
        (
            "get",
            f"/api/shop/Product/?category__in={items}",
            "shop.Product.list",
            {"category__in": [too_long(value, len(items))]},
        ),
        (
            "get",
            f"/api/shop/Product/?category={'1' * (value + 1)}",
            "shop.Product.list",
            {"category": [too_long(value, value + 1)]},
        ),
    ]
    for method, url, event, detail in cases:
        response = await sync_to_async(getattr(client, method))(url)
        assert response.status_code == 400, response.content
        assert response.json() == {
            "event": event,
            "error": {"status": 400, "code": "invalid", "detail": detail},
        }
    body = {"event": "shop.Product.search", "data": {"query": query}}
    response = await sync_to_async(client.post)("/api/events/", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["detail"] == {"query": [too_long(limit, limit + 1)]}
    # at the limits, HTTP answers
    ok = f"/api/shop/Product/?query={query[:limit]}&category__in={items[2:]}"
    response = await sync_to_async(client.get)(ok)
    assert response.status_code == 200, response.content


async def test_an_integer_a_column_cannot_hold_is_a_400_even_as_a_string(
    communicator,
):
    """Short enough, but past 64 bits: SQLite would fail when the rows are read
    (a 500, found while writing these tests)."""
    out_of_range = {"status": 400, "code": "invalid"}
    async with communicator() as client:
        for key, value in [
            ("category", "9" * 30),
            ("category__in", [1, "9" * 30]),
            ("category", 1e300),
        ]:
            reply = await client.request("shop.Product.list", {"filters": {key: value}})
            assert reply["error"] == {
                **out_of_range,
                "detail": {key: ["Number out of range."]},
            }, reply
        # a decimal column compares such a number without failing
        reply = await client.request(
            "shop.Product.list", {"filters": {"price__lt": "9" * 30}}
        )
        assert reply["data"]["count"] == 0
    response = await sync_to_async(APIClient().get)(
        f"/api/shop/Product/?category={'9' * 30}"
    )
    assert response.status_code == 400
    assert response.json()["error"]["detail"] == {"category": ["Number out of range."]}


# -- MAX_COLLECTION_WATCHES ----------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("authenticated", [False, True])
async def test_distinct_collection_watches_per_connection_are_limited(
    communicator, user, path, authenticated
):
    key = "MAX_COLLECTION_WATCHES"
    limit = DEFAULTS[key if authenticated else f"ANONYMOUS_{key}"]
    product = await orm(make_product, name="pen", price=5)
    async with communicator(user if authenticated else None, path=path) as client:
        marker = Marker(client)
        await marker.watch()
        for n in range(limit):
            reply = await client.request(
                f"shop.Product.list#w{n}", {"filters": {"price__gt": 100 + n}}
            )
            assert "error" not in reply, reply
        # the same query under another hash, or again, is not a new watch
        for event in ("shop.Product.list#again", "shop.Product.subscribe#w0"):
            reply = await client.request(event, {"filters": {"price__gt": 100}})
            assert "error" not in reply, reply
        # one more distinct query is refused, whatever the action
        for action in ("list", "search", "subscribe"):
            reply = await client.request(
                f"shop.Product.{action}#more", {"filters": {"price__gt": 1}}
            )
            assert reply == refused(
                f"shop.Product.{action}#more",
                reply["request_id"],
                429,
                "throttled",
                too_many_watches(limit),
            )
        await still_answers(client)
        await orm(save, Product, product.pk, name="pen 2")  # price 5 > 1
        await marker.assert_next()
        # the same query under another hash goes with it: still no room
        await client.request(
            "shop.Product.unsubscribe#again", {"filters": {"price__gt": 100}}
        )
        reply = await client.request(
            "shop.Product.subscribe#more", {"filters": {"price__gt": 1}}
        )
        assert reply["error"]["status"] == 429, reply
        # unsubscribing from a query makes room
        reply = await client.request(
            "shop.Product.unsubscribe#w1", {"filters": {"price__gt": 101}}
        )
        assert reply["data"] == {"subscribed": False}
        reply = await client.request(
            "shop.Product.subscribe#more", {"filters": {"price__gt": 1}}
        )
        assert reply["data"] == {"subscribed": True}, reply
        await orm(save, Product, product.pk, name="pen 3")
        push = await next_push(client)
        assert (push["event"], push["data"]["name"]) == (
            "shop.Product.retrieve#more",
            "pen 3",
        )


# -- MAX_COLLECTION_LOOKUPS ------------------------------------------------------------


def words(count, tag=""):
    return " ".join(f"{tag}w{n}" for n in range(count))


@pytest.mark.parametrize("path", PATHS)
async def test_the_lookups_of_a_connections_watches_are_limited(communicator, path):
    limit = DEFAULTS["MAX_COLLECTION_LOOKUPS"]
    assert limit == 40  # the arithmetic below: shop.Product has two search_fields
    product = await orm(make_product, name="w0 w1 w2 w3 w4")
    async with communicator(path=path) as client:
        marker = Marker(client)
        await marker.watch()
        # 16 words on two search fields: 32 lookups
        reply = await client.request("shop.Product.search#a", {"query": words(16)})
        assert "error" not in reply, reply
        # five more words would be 42
        reply = await client.request("shop.Product.search#b", {"query": words(5)})
        assert reply == refused(
            "shop.Product.search#b", 3, 429, "throttled", too_many_lookups(limit)
        )
        # so would a filter with a list of 128 items (one, and one per 16 items)
        reply = await client.request(
            "shop.Product.list#c", {"filters": {"category__in": ones(128)}}
        )
        assert reply["error"]["detail"] == too_many_lookups(limit), reply
        await still_answers(client)
        await orm(save, Product, product.pk, description="changed")
        await marker.assert_next()
        # four words fit: 40 (as would a list of 127 items: 1 + 7)
        reply = await client.request("shop.Product.search#b", {"query": words(4)})
        assert "error" not in reply, reply
        # a search that replaces its hash's watch gives its lookups back
        reply = await client.request("shop.Product.search#a", {"query": words(1)})
        assert "error" not in reply, reply
        reply = await client.request(
            "shop.Product.list#c", {"filters": {"category__in": ones(128)}}
        )
        assert "error" not in reply, reply


async def test_one_search_alone_may_be_over_the_lookups(communicator):
    class Wide(AsyncBinding):
        model = Product
        stream = "limits.wide"
        fields = ["id", "name"]
        search_fields = ["name", "description", "=name"]

    limit = DEFAULTS["MAX_COLLECTION_LOOKUPS"]
    try:
        async with communicator() as client:
            # 14 words on three search fields: 42
            reply = await client.request("limits.wide.search", {"query": words(14)})
            assert reply["error"]["detail"] == too_many_lookups(limit), reply
            reply = await client.request("limits.wide.search", {"query": words(13)})
            assert reply["data"]["count"] == 0, reply
            # a word given twice is searched, and counted, once: 13 words, not 15
            repeated = f"same same same {words(12)}"
            reply = await client.request("limits.wide.search", {"query": repeated})
            assert "error" not in reply, reply
    finally:
        registry.unregister("limits.wide")


# -- MAX_SUBSCRIPTION_BYTES ----------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
async def test_a_subscription_too_heavy_for_the_budget_is_a_413(communicator, path):
    limit = DEFAULTS["MAX_SUBSCRIPTION_BYTES"]
    product = await orm(make_product, name="pen")
    tag = "h" * limit  # a hash alone over the budget
    async with communicator(path=path) as client:
        marker = Marker(client)
        await marker.watch()
        for event, data in [
            (f"shop.Product.retrieve#{tag}", {"id": product.pk}),
            (f"shop.Product.subscribe#{tag}", {"id": product.pk}),
            (f"shop.Product.list#{tag}", {}),
            (f"shop.Product.subscribe#{tag}", {}),
        ]:
            reply = await client.request(event, data)
            assert reply == refused(
                event, reply["request_id"], 413, "too_large", too_large(limit)
            )
        await still_answers(client)
        await orm(save, Product, product.pk, name="pen 2")
        await marker.assert_next()


def weight(hash_, target, rows=0, stream="shop.Product"):
    """A subscription's weight as docs/settings.rst gives it."""
    size = SUBSCRIPTION_BYTES + len(stream) + len(hash_) + 2 * len(target)
    return size + SEEN_ROW_BYTES * rows


#: The marker's subscription, with a key of up to three digits.
MARKER = weight("marker", "123", rows=1, stream="shop.Category")


def test_the_weight_of_a_subscription():
    sub = Subscription(None, "shop.Product", "side", filters={"in_stock": True})
    assert sub.query_key == '[{"in_stock": true}, ""]'
    assert sub.weight == weight("side", sub.query_key)
    sub.saw([1, 2, 3])
    assert sub.weight == weight("side", sub.query_key, rows=3)
    pk = Subscription(None, "shop.Product", None, pk=12345)
    assert pk.weight == weight("", "12345")
    # characters beyond ASCII count in UTF-8 bytes
    assert Subscription(None, "shop.Product", "é", pk=1).weight == weight("ée", "1")


async def test_rows_a_read_would_show_past_the_budget_refuse_the_read(communicator):
    await orm(lambda: [make_product(name=f"p{n}") for n in range(30)])
    empty = '[{}, ""]'
    # the watch and the first two pages of ten rows fit, not a third
    budget = weight("page", empty, rows=20) + MARKER + 50
    with limits(MAX_SUBSCRIPTION_BYTES=budget):
        async with communicator() as client:
            marker = Marker(client)
            await marker.watch()
            pages = []
            for page in (1, 2, 3):
                pages.append(
                    await client.request(
                        "shop.Product.list#page", {"page": page, "limit": 10}
                    )
                )
            assert [len(p["data"]["rows"]) for p in pages[:2]] == [10, 10]
            assert pages[2] == refused(
                "shop.Product.list#page", 4, 413, "too_large", too_large(budget)
            )
            # what the client already has may be read again
            again = await client.request(
                "shop.Product.list#page", {"page": 2, "limit": 10}
            )
            assert again["data"]["rows"] == pages[1]["data"]["rows"]
            # the refused page was not recorded as shown: its rows' deletes are
            # never pushed, while a row of page 2 is
            third = (await orm(lambda: list(Product.objects.order_by("pk"))))[21]
            await orm(third.delete)
            await marker.assert_next()
            second = pages[1]["data"]["rows"][0]["id"]
            await orm(Product.objects.filter(pk=second).delete)
            push = await next_push(client)
            assert push == {"event": "shop.Product.delete#page", "data": {"id": second}}


async def test_a_refused_or_failed_read_keeps_the_watch_it_would_replace(communicator):
    pen = await orm(make_product, name="pen", description="ink")
    await orm(lambda: [make_product(name=f"p{n}") for n in range(20)])
    # room for the search of "pen" (one row), not for a page of twenty
    budget = weight("box", '[{}, "pen"]', rows=1) + MARKER + 600
    with limits(MAX_SUBSCRIPTION_BYTES=budget):
        async with communicator() as client:
            marker = Marker(client)
            await marker.watch()
            reply = await client.request("shop.Product.search#box", {"query": "pen"})
            assert reply["data"]["count"] == 1
            # a new search with the same hash would replace that watch: refused
            # for its rows, it leaves it in place
            reply = await client.request(
                "shop.Product.search#box", {"query": "p", "limit": 20}
            )
            assert reply["error"]["code"] == "too_large", reply
            # and so does one that fails (a page past the last)
            reply = await client.request(
                "shop.Product.search#box", {"query": "ink", "page": 9}
            )
            assert reply["error"]["code"] == "not_found", reply
            await orm(save, Product, pen.pk, description="ink pen")
            push = await next_push(client)
            assert (push["event"], push["data"]["id"]) == (
                "shop.Product.retrieve#box",
                pen.pk,
            )
            # while the refused one watches nothing
            other = await orm(Product.objects.get, name="p3")
            await orm(save, Product, other.pk, description="more")
            await marker.assert_next()


async def test_a_watch_refused_before_its_read_keeps_the_one_it_would_replace(
    communicator,
):
    pen = await orm(make_product, name="pen")
    async with communicator() as client:
        await client.request("shop.Product.search#a", {"query": words(16)})  # 32
        reply = await client.request("shop.Product.search#box", {"query": "pen"})
        assert reply["data"]["count"] == 1  # 34 lookups
        # replacing "pen" (2) with five words (10) would make 42
        reply = await client.request("shop.Product.search#box", {"query": words(5)})
        assert reply["error"]["status"] == 429, reply
        await orm(save, Product, pen.pk, description="still watched")
        push = await next_push(client)
        assert (push["event"], push["data"]["id"]) == (
            "shop.Product.retrieve#box",
            pen.pk,
        )


# -- system check -------------------------------------------------------------------


def test_a_limit_that_is_not_a_number_fails_the_checks():
    for value in (-1, "256", 1.5, True):
        with limits(
            MAX_QUERY_LENGTH=value,
            MAX_COLLECTION_LOOKUPS=value,
            MAX_PENDING_REQUEST_BYTES=value,
        ):
            errors = [m for m in run_checks() if m.id == "channels_binding.E004"]
            assert len(errors) == 3, (value, errors)
    for value in (0, 256, None):
        with limits(MAX_SUBSCRIPTION_BYTES=value):
            assert "channels_binding.E004" not in [m.id for m in run_checks()]


# -- the attack, against a real daphne process ---------------------------------------

SETUP = """
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from tests.shop.models import Category, Product

user = get_user_model().objects.create_user("watcher", password="pw")
session = SessionStore()
session["_auth_user_id"] = str(user.pk)
session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
session["_auth_user_hash"] = user.get_session_auth_hash()
session.create()
category = Category.objects.create(name="Office")
for n in range(30):
    Product.objects.create(name=f"p{n}", price=n + 1, category=category)
print(session.session_key, Product.objects.order_by("pk").first().pk)
"""

# The time is taken before the save: the latency includes the save itself.
SAVE = """
import time
from tests.shop.models import Product
product = Product.objects.get(pk={pk})
product.name = "Saved"
started = time.time()
product.save()
print(started)
"""

MIB = 1024 * 1024


def rss(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


#: The attack's frames are large and its reads slow: 30 s for each answer.
TIMEOUT = 30


def huge(n):
    """A 900 KB query whose words SQLite still searches: 18 words just under its
    50,000-byte limit on a ``LIKE`` pattern, of which a search uses 16."""
    return " ".join(f"{n}.{word}".ljust(49_990, "x") for word in range(18))


def heavy_watch(n):
    """Watch number ``n`` at its heaviest within 8 lookups (five of them spend
    the 40): a query of ``MAX_QUERY_LENGTH`` characters in three words (6), a
    list of ``MAX_FILTER_VALUE_LENGTH`` characters in 15 items (1), and a filter
    (1)."""
    width = (DEFAULTS["MAX_QUERY_LENGTH"] + 1) // 3 - 1
    query = " ".join(f"{n}.{word}".ljust(width, "q") for word in range(3))
    size = (DEFAULTS["MAX_FILTER_VALUE_LENGTH"] + 1) // 15 - 1
    items = [10 ** (size - 1) + 100 * n + item for item in range(15)]
    return {
        "filters": {"category__in": items, "price__gt": 1000 + n},
        "query": query,
    }


@pytest.mark.slow
async def test_one_socket_at_every_limit_leaves_other_watchers_fast(tmp_path):
    from websockets.asyncio.client import connect

    with redis_server(tmp_path) as redis_url:
        env = server_env(tmp_path / "db.sqlite3", redis_url)
        await sync_to_async(django_admin)(env, "migrate", "--noinput", "-v", "0")
        output = await sync_to_async(django_admin)(env, "shell", "-c", SETUP)
        session_key, pk = output.split()
        log = tmp_path / "daphne.log"
        with asgi_process(env, log, "daphne") as (port, process):
            url = f"ws://127.0.0.1:{port}/ws/"
            cookie = {"Cookie": f"sessionid={session_key}"}
            async with (
                connect(url, additional_headers=cookie) as watcher,
                connect(url, max_size=None) as attacker,
            ):
                assert (await receive(watcher, TIMEOUT))["data"][
                    "authenticated"
                ] is True
                assert (await receive(attacker, TIMEOUT))["data"][
                    "authenticated"
                ] is False
                listed = await request(watcher, "shop.Product.list#all", {}, 1, TIMEOUT)
                assert listed["data"]["count"] == 30
                before = rss(process.pid)

                # 300 searches with distinct hashes and 900 KB queries
                for n in range(300):
                    reply = await request(
                        attacker,
                        f"shop.Product.search#h{n}",
                        {"query": huge(n)},
                        n,
                        TIMEOUT,
                    )
                    assert reply["error"]["status"] == 400, reply

                # then every watch the limits allow, each as heavy as it may be
                limit = DEFAULTS["ANONYMOUS_MAX_COLLECTION_WATCHES"]
                for n in range(limit + 1):
                    event = "shop.Product.search#" + f"w{n}".ljust(4000, "w")
                    reply = await request(
                        attacker, event, heavy_watch(n), 1000 + n, TIMEOUT
                    )
                    if n < limit:
                        assert "error" not in reply, reply
                    else:
                        assert reply["error"]["status"] == 429, reply
                # and subscriptions with long hashes until the bytes run out
                subscriptions = 0
                for n in range(1000):
                    tag = f"{n}".ljust(4000, "t")
                    event = f"shop.Product.subscribe#{tag}"
                    reply = await request(
                        attacker, event, {"id": int(pk)}, 10_000 + n, TIMEOUT
                    )
                    if "error" in reply:
                        assert reply["error"]["code"] == "too_large", reply
                        break
                    subscriptions += 1
                assert 10 < subscriptions < 1000
                # and 100 frames of almost MAX_FRAME_BYTES sent without waiting:
                # each is refused (its query too long, or too many bytes of
                # requests in progress), none is kept
                flood = "f" * (DEFAULTS["MAX_FRAME_BYTES"] - 200)
                for n in range(100):
                    await attacker.send(
                        json.dumps(
                            {
                                "event": "shop.Product.search",
                                "data": {"query": flood},
                                "request_id": 20_000 + n,
                            }
                        )
                    )
                statuses = set()
                for _ in range(100):
                    statuses.add((await receive(attacker, TIMEOUT))["error"]["status"])
                assert statuses <= {400, 429}, statuses
                grown = rss(process.pid) - before

                # another user's list watcher gets an ORM save's push at once
                script = SAVE.format(pk=pk)
                output = await sync_to_async(django_admin)(env, "shell", "-c", script)
                while True:
                    push = await receive(watcher, TIMEOUT)
                    if push.get("event") == "shop.Product.retrieve#all":
                        received = time.time()
                        break
                assert push["data"]["name"] == "Saved"
                latency = received - float(output)
        print(
            f"\nRSS growth {grown / MIB:.1f} MiB, push latency {latency * 1000:.0f} ms,"
            f" {limit} collection watches, {subscriptions} subscriptions"
        )
        assert grown <= 64 * MIB, f"daphne grew by {grown / MIB:.0f} MiB"
        assert latency <= 0.5, f"the push took {latency:.2f} s"
