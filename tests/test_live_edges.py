"""Edge cases of live data and of the connection's request handling, each a bug
that was found: they must stay fixed."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from django.core.checks import run_checks
from django.test import override_settings
from rest_framework.permissions import AllowAny

from channels_binding.bindings import AsyncBinding, bind
from channels_binding.live import announce
from channels_binding.live.hub import Hub
from channels_binding.registry import registry
from tests.shop.models import Category, Product, Tag
from tests.test_live import next_push

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = {"BINDINGS_MODULES": ["tests.root_bindings"]}


@database_sync_to_async
def orm(fn, *args, **kwargs):
    return fn(*args, **kwargs)


class Gate:
    """What the ``edges.wait`` handler records: how many entered, how many were
    cancelled, and the event that lets them finish."""

    entered = 0
    cancelled = 0
    release: asyncio.Event | None = None


@pytest.fixture
def edge_bindings():
    class Waiting(AsyncBinding):
        stream = "edges"
        permission_classes = [AllowAny]

        @bind("wait", method="GET")
        async def wait(self, request):
            Gate.entered += 1
            try:
                await Gate.release.wait()
            except asyncio.CancelledError:
                Gate.cancelled += 1
                raise
            return {"ok": True}

    class CategoriesByName(AsyncBinding):
        model = Category
        stream = "edges.categories"
        fields = ["id", "name"]
        lookup_field = "name"

    class ListOnlyProducts(AsyncBinding):
        model = Product
        stream = "edges.listonly"
        fields = ["id", "name"]
        actions = ("list",)

    Gate.entered = Gate.cancelled = 0
    yield
    for stream in ("edges", "edges.categories", "edges.listonly"):
        registry.unregister(stream)


async def test_disconnect_is_handled_while_every_slot_is_busy(
    communicator, edge_bindings
):
    Gate.release = asyncio.Event()
    with override_settings(CHANNELS_BINDING={**ROOT, "MAX_CONCURRENT_REQUESTS": 2}):
        client = communicator()
        await client.connect()
        hub = Hub.current()
        for number in range(6):
            await client.send_event("edges.wait", {}, request_id=number)
        for _ in range(50):
            if Gate.entered == 2:
                break
            await asyncio.sleep(0.01)
        assert Gate.entered == 2  # two run, four wait for a slot
        await client.disconnect()
        assert Gate.cancelled == 2
        assert Gate.entered == 2  # the waiting ones never started
        assert all(member is not client for member in hub.members)
        assert not hub.members


async def test_a_client_far_ahead_is_told_to_wait(communicator, edge_bindings):
    Gate.release = asyncio.Event()
    with override_settings(CHANNELS_BINDING={**ROOT, "MAX_CONCURRENT_REQUESTS": 1}):
        async with communicator() as client:
            # one running and four waiting are accepted; the rest get 429 at once
            for number in range(8):
                await client.send_event("edges.wait", {}, request_id=number)
            refused = [await client.receive_json_from() for _ in range(3)]
            assert [frame["request_id"] for frame in refused] == [5, 6, 7]
            assert {frame["error"]["status"] for frame in refused} == {429}
            assert refused[0]["error"]["code"] == "throttled"
            Gate.release.set()
            done = [await client.receive_json_from() for _ in range(5)]
            assert sorted(frame["request_id"] for frame in done) == [0, 1, 2, 3, 4]
            assert all(frame["data"] == {"ok": True} for frame in done)


async def test_unsubscribe_a_query(communicator):
    async with communicator() as client:
        reply = await client.request("shop.Product.subscribe#q", {"query": "pen"})
        assert reply["data"] == {"subscribed": True}
        reply = await client.request("shop.Product.unsubscribe#q", {"query": "pen"})
        assert reply["data"] == {"subscribed": False}
        await orm(Product.objects.create, name="pen", price=1)
        await client.request("shop.Product.subscribe#marker", {"query": "ink"})
        ink = await orm(Product.objects.create, name="ink", price=1)
        push = await next_push(client)
        assert push["event"] == "shop.Product.retrieve#marker"
        assert push["data"]["id"] == ink.pk
        assert await client.receive_nothing(0.2)


async def test_bindings_without_search_or_retrieve_still_push(
    communicator, edge_bindings
):
    async with communicator() as client:
        await client.request("shop.Tag.list")  # Tag answers retrieve and list only
        tag = await orm(Tag.objects.create, name="new")
        assert (await next_push(client))["data"] == {
            "id": tag.pk,
            "name": "new",
        }
        await client.request("edges.listonly.list")
        product = await orm(Product.objects.create, name="p", price=1)
        push = await next_push(client)
        assert push == {
            "event": "edges.listonly.retrieve",
            "data": {"id": product.pk, "name": "p"},
        }


@pytest.mark.parametrize(
    "event, data",
    [
        ("shop.Product.subscribe", {"query": 5}),
        ("shop.Product.subscribe", {"query": ["a"]}),
        ("shop.Note.subscribe", {"query": "x"}),  # Note has no search_fields
        ("shop.Product.subscribe", {"filters": {"price__lt": "abc"}}),
    ],
)
async def test_subscriptions_are_validated_like_searches(
    communicator, user, event, data
):
    async with communicator(user) as client:
        reply = await client.request(event, data)
        assert reply["error"]["status"] == 400
        # and the stream still pushes to a valid watcher
        await client.request("shop.Product.subscribe#ok", {})
        product = await orm(Product.objects.create, name="x", price=1)
        push = await next_push(client)
        assert push["event"] == "shop.Product.retrieve#ok"
        assert push["data"]["id"] == product.pk


async def test_subscribe_with_a_lookup_field_other_than_the_pk(
    communicator, edge_bindings
):
    pens = await orm(Category.objects.create, name="Pens")
    async with communicator() as client:
        reply = await client.request("edges.categories.subscribe", {"id": "Pens"})
        assert reply["data"] == {"subscribed": True}
        await orm(lambda: Category.objects.filter(pk=pens.pk).first().save())
        push = await next_push(client)
        assert push == {
            "event": "edges.categories.retrieve",
            "data": {"id": pens.pk, "name": "Pens"},
        }
        reply = await client.request("edges.categories.unsubscribe", {"id": "Pens"})
        assert reply["data"] == {"subscribed": False}
        reply = await client.request("edges.categories.retrieve", {"id": "Pens"})
        assert reply["data"]["id"] == pens.pk


async def test_announce_from_async_code(communicator):
    product = await orm(Product.objects.create, name="Pen", price=1)
    async with communicator() as client:
        await client.request("shop.Product.retrieve", {"id": product.pk})
        await orm(Product.objects.filter(pk=product.pk).update, name="bulk")
        announce(Product, [product.pk])  # on the event loop, no thread
        push = await next_push(client)
        assert push["data"]["name"] == "bulk"


def test_invalid_throttle_rates_fail_the_checks():
    for rates in ("100/fortnight", {"create": "x/second"}, 5):
        with override_settings(CHANNELS_BINDING={**ROOT, "THROTTLE_RATES": rates}):
            assert "channels_binding.E003" in [m.id for m in run_checks()]
    with override_settings(CHANNELS_BINDING={**ROOT, "THROTTLE_RATES": "5/minute"}):
        assert "channels_binding.E003" not in [m.id for m in run_checks()]


async def test_a_waiting_request_keeps_the_identity_it_was_sent_with(
    communicator, edge_bindings, user
):
    from rest_framework.authtoken.models import Token

    key = (await database_sync_to_async(Token.objects.create)(user=user)).key
    Gate.release = asyncio.Event()
    with override_settings(CHANNELS_BINDING={**ROOT, "MAX_CONCURRENT_REQUESTS": 1}):
        async with communicator() as client:
            await client.send_event("edges.wait", {}, request_id="busy")
            await client.send_event("tools.whoami", {}, request_id="queued")
            reply = await client.request("authorize", {"token": key})
            assert reply["data"]["user_id"] == user.pk
            Gate.release.set()
            frames = [await client.receive_json_from() for _ in range(3)]
    by_id = {frame.get("request_id"): frame for frame in frames + client.pushes}
    assert by_id["queued"]["data"]["user_id"] is None  # sent while anonymous
    assert by_id["busy"]["data"] == {"ok": True}


async def test_an_empty_exclude_publishes_every_field(communicator, user):
    from django.contrib.auth import get_user_model

    class AllOfThem(AsyncBinding):
        model = get_user_model()
        stream = "edges.users"
        exclude = []

    try:
        async with communicator() as client:
            reply = await client.request("edges.users.retrieve", {"id": user.pk})
        assert "password" in reply["data"]  # asked for explicitly
    finally:
        registry.unregister("edges.users")


async def test_subscriptions_per_connection_are_bounded(communicator):
    products = [
        await orm(Product.objects.create, name=f"p{i}", price=1) for i in range(3)
    ]
    with override_settings(CHANNELS_BINDING={**ROOT, "MAX_SUBSCRIPTIONS": 2}):
        async with communicator() as client:
            for product in products[:2]:
                reply = await client.request(
                    "shop.Product.subscribe", {"id": product.pk}
                )
                assert reply["data"] == {"subscribed": True}
            # the same subscription again is not a new one
            reply = await client.request(
                "shop.Product.retrieve", {"id": products[0].pk}
            )
            assert reply["data"]["id"] == products[0].pk
            reply = await client.request(
                "shop.Product.subscribe", {"id": products[2].pk}
            )
            assert reply["error"]["status"] == 429
            assert "Too many subscriptions (2)" in reply["error"]["detail"]
            # a refused watch is not half-made: no push for it
            await orm(lambda: Product.objects.get(pk=products[2].pk).save())
            await client.request("shop.Product.unsubscribe", {"id": products[0].pk})
            reply = await client.request(
                "shop.Product.subscribe", {"id": products[2].pk}
            )
            assert reply["data"] == {"subscribed": True}
            await orm(lambda: Product.objects.get(pk=products[2].pk).save())
            push = await next_push(client)
            assert push["data"]["id"] == products[2].pk
            assert await client.receive_nothing(0.2)
            assert client.pushes == []


@pytest.mark.parametrize("path", ["/ws/", "/ws/sync/"])
async def test_a_reply_larger_than_the_outgoing_buffer_is_sent(communicator, path):
    def make():
        for number in range(10):
            Product.objects.create(name=f"p{number}", price=1, description="x" * 500)

    await database_sync_to_async(make)()
    settings = {**ROOT, "OUTGOING_BUFFER_BYTES": 3000}
    with override_settings(CHANNELS_BINDING=settings):
        async with communicator(path=path) as client:
            reply = await client.request("shop.Product.list", {})
            assert len(json.dumps(reply)) > 3000
            assert reply["data"]["count"] == 10
            # and the socket still answers
            assert (await client.request("shop.Product.list", {"limit": 1}))["data"][
                "count"
            ] == 10
