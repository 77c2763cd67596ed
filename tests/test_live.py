"""Live data: subscriptions and pushes, through real sockets and the in-memory layer.

"No push" is asserted with a marker: after the change that must not be pushed, a
change that must be pushed is made, and the next frame must be the marker's. The hub
handles changes in order, so this cannot pass by waiting too little.
"""

import pytest
from channels.db import database_sync_to_async
from django.db import transaction
from django.test import override_settings

from channels_binding.live import announce
from tests.shop.models import Note, Product, Tag

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = {"BINDINGS_MODULES": ["tests.root_bindings"]}


@database_sync_to_async
def orm(fn, *args, **kwargs):
    return fn(*args, **kwargs)


def make_product(**fields):
    fields.setdefault("price", 1)
    return Product.objects.create(**fields)


def save(model, pk, **fields):
    obj = model.objects.get(pk=pk)
    for name, value in fields.items():
        setattr(obj, name, value)
    obj.save()
    return obj


async def next_push(client, timeout=3):
    """The next push, including one that arrived while a reply was awaited."""
    if client.pushes:
        return client.pushes.pop(0)
    frame = await client.receive_json_from(timeout)
    assert "request_id" not in frame, frame
    return frame


async def test_retrieve_watches_the_object_and_pushes_changes_from_another_socket(
    communicator, user
):
    product = await orm(make_product, name="Pen")
    async with communicator() as watcher, communicator(user) as writer:
        reply = await watcher.request("shop.Product.retrieve", {"id": product.pk})
        assert reply["data"]["name"] == "Pen"
        update = await writer.request(
            "shop.Product.update", {"id": product.pk, "name": "Fountain pen"}
        )
        assert update["data"]["name"] == "Fountain pen"
        push = await next_push(watcher)
        assert push["event"] == "shop.Product.retrieve"
        assert push["data"]["id"] == product.pk
        assert push["data"]["name"] == "Fountain pen"
        assert push["data"] == update["data"]


async def test_the_seed_exchange_save_then_retrieve_push(communicator, user):
    async with communicator(user) as client:
        await client.request("auth.User.retrieve", {"id": user.pk})
        reply = await client.request(
            "auth.User.save", {"id": user.pk, "username": "Changed Username"}
        )
        assert reply["data"] == {"success": True, "id": user.pk}
        push = await next_push(client)
    assert push == {
        "event": "auth.User.retrieve",
        "data": {"id": user.pk, "username": "Changed Username", "email": user.email},
    }


async def test_orm_code_outside_any_socket_reaches_watchers(communicator):
    product = await orm(make_product, name="Pen")
    async with communicator() as watcher:
        await watcher.request(f"shop.Product.retrieve#{product.pk}")
        await orm(save, Product, product.pk, price=7)
        push = await next_push(watcher)
    assert push["event"] == f"shop.Product.retrieve#{product.pk}"
    assert push["data"]["price"] == "7.00"


async def test_push_waits_for_commit_and_rollback_pushes_nothing(communicator):
    product = await orm(make_product, name="Pen")

    def rolled_back():
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                save(Product, product.pk, name="never")
                raise RuntimeError

    async with communicator() as watcher:
        await watcher.request("shop.Product.retrieve", {"id": product.pk})
        await orm(rolled_back)
        await orm(save, Product, product.pk, name="marker")
        push = await next_push(watcher)
        assert push["data"]["name"] == "marker"
        assert await watcher.receive_nothing(0.2)


async def test_nothing_is_pushed_before_the_commit(communicator):
    product = await orm(make_product, name="Pen")
    async with communicator() as watcher:
        await watcher.request("shop.Product.retrieve", {"id": product.pk})
        atomic = transaction.atomic()

        def begin_and_save():
            atomic.__enter__()
            save(Product, product.pk, name="pending")
            save(Product, product.pk, name="pending again")
            save(Product, product.pk, name="committed")

        await orm(begin_and_save)
        assert await watcher.receive_nothing(0.3)
        await orm(atomic.__exit__, None, None, None)
        push = await next_push(watcher)
        assert push["data"]["name"] == "committed"
        # three saves in one transaction: one push
        await orm(save, Product, product.pk, name="marker")
        assert (await next_push(watcher))["data"]["name"] == "marker"
        assert await watcher.receive_nothing(0.2)


async def test_delete_is_pushed_to_object_and_list_watchers(communicator, user):
    product = await orm(make_product, name="Pen")
    async with communicator() as one, communicator() as many:
        await one.request("shop.Product.retrieve", {"id": product.pk})
        await many.request("shop.Product.list")
        async with communicator(user) as writer:
            reply = await writer.request("shop.Product.delete", {"id": product.pk})
            assert reply["data"] == {"success": True, "id": product.pk}
        expected = {"event": "shop.Product.delete", "data": {"id": product.pk}}
        assert await next_push(one) == expected
        assert await next_push(many) == expected


async def test_list_watcher_sees_new_rows_and_rows_leaving_its_filter(communicator):
    kept = await orm(make_product, name="kept", in_stock=True)
    async with communicator() as watcher:
        page = await watcher.request(
            "shop.Product.list#instock", {"filters": {"in_stock": True}}
        )
        assert [row["id"] for row in page["data"]["rows"]] == [kept.pk]
        added = await orm(make_product, name="added", in_stock=True)
        push = await next_push(watcher)
        assert push["event"] == "shop.Product.list#instock".replace("list", "retrieve")
        assert push["data"]["id"] == added.pk
        # a row that never matched is never mentioned, not even by id
        await orm(make_product, name="out of stock", in_stock=False)
        await orm(save, Product, kept.pk, in_stock=False)
        push = await next_push(watcher)
        assert push == {"event": "shop.Product.delete#instock", "data": {"id": kept.pk}}
        assert await watcher.receive_nothing(0.2)
        # back in stock: it enters the collection again
        await orm(save, Product, kept.pk, in_stock=True)
        push = await next_push(watcher)
        assert push["event"] == "shop.Product.retrieve#instock"
        assert push["data"]["id"] == kept.pk


async def test_search_watch_follows_the_query(communicator):
    async with communicator() as watcher:
        await watcher.request("shop.Product.search", {"query": "blue"})
        await orm(make_product, name="red pen")
        blue = await orm(make_product, name="blue pen")
        push = await next_push(watcher)
        assert push["event"] == "shop.Product.retrieve"
        assert push["data"]["id"] == blue.pk


async def test_two_widgets_tell_their_pushes_apart_by_hash(communicator):
    async with communicator() as client:
        await client.request("shop.Product.list#left", {"filters": {"in_stock": True}})
        await client.request(
            "shop.Product.list#right", {"filters": {"in_stock": False}}
        )
        product = await orm(make_product, name="x", in_stock=False)
        push = await next_push(client)
        assert push["event"] == "shop.Product.retrieve#right"
        await orm(save, Product, product.pk, in_stock=True)
        pushes = [await next_push(client), await next_push(client)]
    events = sorted((p["event"], p["data"]["id"]) for p in pushes)
    assert events == [
        ("shop.Product.delete#right", product.pk),
        ("shop.Product.retrieve#left", product.pk),
    ]


async def test_each_user_sees_only_their_rows_in_pushes(communicator, user, other_user):
    async with communicator(user) as alice, communicator(other_user) as bob:
        await alice.request("shop.Note.list")
        await bob.request("shop.Note.list")
        created = await alice.request("shop.Note.create", {"text": "alice's"})
        note_id = created["data"]["id"]
        assert (await next_push(alice))["data"]["text"] == "alice's"
        await bob.request("shop.Note.create", {"text": "bob's"})
        push = await next_push(bob)
        assert push["data"]["text"] == "bob's"  # not alice's note first
        assert await bob.receive_nothing(0.2)
        # the note changes hands: alice loses it, bob gains it
        await orm(save, Note, note_id, owner=other_user)
        assert await next_push(alice) == {
            "event": "shop.Note.delete",
            "data": {"id": note_id},
        }
        push = await next_push(bob)
        assert push["event"] == "shop.Note.retrieve"
        assert push["data"] == {
            "id": note_id,
            "text": "alice's",
            "owner": other_user.pk,
        }
        assert await alice.receive_nothing(0.2)


async def test_subscribing_to_an_object_you_may_not_see_is_refused(
    communicator, user, other_user
):
    note = await orm(Note.objects.create, owner=user, text="private")
    async with communicator(other_user) as bob, communicator() as anonymous:
        reply = await bob.request("shop.Note.subscribe", {"id": note.pk})
        assert reply["error"]["code"] == "not_found"
        reply = await anonymous.request("shop.Note.subscribe", {"id": note.pk})
        assert reply["error"]["code"] == "not_authenticated"
        await orm(save, Note, note.pk, text="changed")
        marker = await orm(Note.objects.create, owner=other_user, text="marker")
        await bob.request("shop.Note.subscribe", {"id": marker.pk})
        await orm(save, Note, marker.pk, text="marker changed")
        assert (await next_push(bob))["data"]["id"] == marker.pk
        assert await bob.receive_nothing(0.2)


async def test_explicit_subscribe_and_unsubscribe(communicator):
    product = await orm(make_product, name="Pen")
    async with communicator() as client:
        reply = await client.request("shop.Product.subscribe", {"id": product.pk})
        assert reply["data"] == {"subscribed": True}
        await orm(save, Product, product.pk, name="one")
        assert (await next_push(client))["data"]["name"] == "one"
        reply = await client.request("shop.Product.unsubscribe", {"id": product.pk})
        assert reply["data"] == {"subscribed": False}
        await orm(save, Product, product.pk, name="two")
        other = await orm(make_product, name="marker")
        await client.request("shop.Product.subscribe", {"id": other.pk})
        await orm(save, Product, other.pk, name="marker 2")
        assert (await next_push(client))["data"]["name"] == "marker 2"
        assert await client.receive_nothing(0.2)


async def test_collection_subscribe_validates_like_a_list(communicator):
    async with communicator() as client:
        reply = await client.request(
            "shop.Product.subscribe", {"filters": {"name": "x"}}
        )
        assert reply["error"]["status"] == 400
        assert "name" in reply["error"]["detail"]
        reply = await client.request("shop.Product.subscribe#all", {})
        assert reply["data"] == {"subscribed": True}
        product = await orm(make_product, name="new")
        push = await next_push(client)
        assert push["event"] == "shop.Product.retrieve#all"
        assert push["data"]["id"] == product.pk


async def test_duplicate_subscription_pushes_once(communicator):
    product = await orm(make_product, name="Pen")
    async with communicator() as client:
        for _ in range(3):
            await client.request("shop.Product.subscribe", {"id": product.pk})
        await client.request("shop.Product.retrieve", {"id": product.pk})
        await orm(save, Product, product.pk, name="once")
        assert (await next_push(client))["data"]["name"] == "once"
        await orm(save, Product, product.pk, name="marker")
        assert (await next_push(client))["data"]["name"] == "marker"


async def test_auto_subscribe_can_be_turned_off(communicator):
    product = await orm(make_product, name="Pen")
    with override_settings(CHANNELS_BINDING={**ROOT, "AUTO_SUBSCRIBE": False}):
        async with communicator() as client:
            await client.request("shop.Product.retrieve", {"id": product.pk})
            await client.request("shop.Product.list")
            await orm(save, Product, product.pk, name="quiet")
            other = await orm(make_product, name="other")
            await client.request("shop.Product.subscribe", {"id": other.pk})
            await orm(save, Product, other.pk, name="marker")
            assert (await next_push(client))["data"]["name"] == "marker"
            assert await client.receive_nothing(0.2)


async def test_announce_pushes_bulk_updates(communicator):
    products = [await orm(make_product, name=f"p{i}", in_stock=False) for i in range(3)]
    async with communicator() as client:
        await client.request("shop.Product.list")

        def bulk():
            queryset = Product.objects.filter(pk__in=[p.pk for p in products])
            queryset.update(in_stock=True)
            announce(queryset)

        await orm(bulk)
        pushes = [await next_push(client) for _ in products]
    assert sorted(p["data"]["id"] for p in pushes) == [p.pk for p in products]
    assert all(p["data"]["in_stock"] is True for p in pushes)


async def test_many_to_many_changes_are_pushed(communicator):
    product = await orm(make_product, name="Pen")
    tag = await orm(Tag.objects.create, name="blue")
    async with communicator() as client:
        await client.request("shop.Product.retrieve", {"id": product.pk})
        await orm(lambda: product.tags.add(tag))
        assert (await next_push(client))["data"]["tags"] == ["blue"]
        await orm(lambda: product.tags.clear())
        assert (await next_push(client))["data"]["tags"] == []


async def test_disconnect_leaves_nothing_behind(communicator):
    from channels.layers import get_channel_layer

    from channels_binding.live.hub import Hub

    product = await orm(make_product, name="Pen")
    client = communicator()
    await client.connect()
    await client.request("shop.Product.retrieve", {"id": product.pk})
    hub = Hub.current()
    assert hub.index.for_consumer(next(iter(hub.members)))
    layer = get_channel_layer()
    assert any(hub.channel in members for members in layer.groups.values())
    await client.disconnect()
    assert not hub.members
    assert not any(hub.channel in members for members in layer.groups.values())


async def test_many_watchers_all_receive_one_change(communicator):
    product = await orm(make_product, name="Pen")
    clients = [communicator() for _ in range(50)]
    for client in clients:
        await client.connect()
        await client.request("shop.Product.retrieve", {"id": product.pk})
    await orm(save, Product, product.pk, name="fan-out")
    for client in clients:
        assert (await next_push(client))["data"]["name"] == "fan-out"
    for client in clients:
        await client.disconnect()


async def test_sync_consumer_receives_pushes_too(communicator):
    product = await orm(make_product, name="Pen")
    async with communicator(path="/ws/sync/") as client:
        await client.request("shop.Product.retrieve", {"id": product.pk})
        await orm(save, Product, product.pk, name="sync")
        assert (await next_push(client))["data"]["name"] == "sync"


async def test_a_new_search_replaces_the_last_one_with_the_same_hash(communicator):
    async with communicator() as client:
        # a search box: each keystroke a new query, only the last one is watched
        for query in ("b", "bl", "blu"):
            await client.request("shop.Product.search#box", {"query": query})
        await client.request("shop.Product.search#other", {"query": "b"})
        await client.request("shop.Product.subscribe#kept", {"query": "b"})
        product = await orm(make_product, name="bx")  # matches "b" only
        pushes = [await next_push(client), await next_push(client)]
        assert sorted(p["event"] for p in pushes) == [
            "shop.Product.retrieve#kept",
            "shop.Product.retrieve#other",
        ]
        assert all(p["data"]["id"] == product.pk for p in pushes)
        blue = await orm(make_product, name="blue")
        pushes = [await next_push(client) for _ in range(3)]
        assert sorted(p["event"] for p in pushes) == [
            "shop.Product.retrieve#box",
            "shop.Product.retrieve#kept",
            "shop.Product.retrieve#other",
        ]
        assert all(p["data"]["id"] == blue.pk for p in pushes)
        assert await client.receive_nothing(0.2)


async def test_explicit_subscribe_survives_a_later_list(communicator):
    async with communicator() as client:
        await client.request("shop.Product.list", {"filters": {"in_stock": True}})
        await client.request("shop.Product.subscribe", {"filters": {"in_stock": True}})
        await client.request("shop.Product.list", {"filters": {"in_stock": False}})
        product = await orm(make_product, name="in stock", in_stock=True)
        push = await next_push(client)
        assert push["event"] == "shop.Product.retrieve"
        assert push["data"]["id"] == product.pk
