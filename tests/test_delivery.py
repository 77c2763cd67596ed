"""Delivery guarantees over real frames: a change whose message was lost is
repaired (resync), a counter that went back (Redis lost its data) too, pushes never
overtake the reply of the read that started a watch, and a cut connection resumes
with what it missed.

Losses are made the way they happen: a change takes its number and its message
never arrives (as when a channel is over capacity); tests/test_stress.py loses real
messages in a real channel layer.
"""

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.test import override_settings

from channels_binding.live.hub import Hub
from channels_binding.live.sequence import sequencer_for
from tests.shop.models import Product
from tests.test_live import next_push

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = {"BINDINGS_MODULES": ["tests.root_bindings"]}
FAST = {**ROOT, "LIVE_CHECK_SECONDS": 0.05, "LIVE_GAP_SECONDS": 0.2}


@database_sync_to_async
def orm(fn, *args, **kwargs):
    return fn(*args, **kwargs)


def make_product(name, **fields):
    return Product.objects.create(name=name, price=1, **fields)


def rename_silently(pk, name):
    """A change whose message will be lost: no signal, no announce."""
    Product.objects.filter(pk=pk).update(name=name)


def rename(pk, name):
    product = Product.objects.get(pk=pk)
    product.name = name
    product.save()


async def lose_a_change(pk, name):
    await orm(rename_silently, pk, name)
    await sequencer_for(get_channel_layer()).next("shop.Product")


async def watch(client, pk):
    reply = await client.request("shop.Product.retrieve#o", {"id": pk})
    assert "error" not in reply, reply
    reply = await client.request(
        "shop.Product.list#l", {"filters": {"in_stock": True}, "limit": 100}
    )
    assert "error" not in reply, reply


async def test_a_lost_change_is_resynced(communicator):
    product = await orm(make_product, "Pen")
    with override_settings(CHANNELS_BINDING=FAST):
        async with communicator() as watcher:
            await watch(watcher, product.pk)
            await lose_a_change(product.pk, "Ink")
            frames = [await next_push(watcher, timeout=2) for _ in range(2)]
            by_event = {frame["event"]: frame for frame in frames}
            # The object's state is pushed; the list is told to read again.
            assert by_event["shop.Product.retrieve#o"]["data"]["name"] == "Ink"
            assert by_event["shop.Product.resync#l"]["data"] == {
                "filters": {"in_stock": True},
                "query": None,
            }
            assert await watcher.receive_nothing(0.5)


async def test_without_resync_a_lost_change_stays_lost(communicator):
    product = await orm(make_product, "Pen")
    with override_settings(CHANNELS_BINDING={**FAST, "LIVE_RESYNC": False}):
        async with communicator() as watcher:
            await watch(watcher, product.pk)
            await lose_a_change(product.pk, "Ink")
            assert await watcher.receive_nothing(1)


async def test_changes_that_arrive_are_not_resynced(communicator):
    product = await orm(make_product, "Pen")
    with override_settings(CHANNELS_BINDING=FAST):
        async with communicator() as watcher:
            await watch(watcher, product.pk)
            for name in ("A", "B", "C"):
                await orm(rename, product.pk, name)
                await asyncio.sleep(0.05)
            events = []
            while not await watcher.receive_nothing(0.6):
                events.append((await next_push(watcher))["event"])
            assert events and set(events) == {
                "shop.Product.retrieve#o",
                "shop.Product.retrieve#l",
            }
            assert Hub.current().resynced == 0


async def test_a_counter_that_went_back_is_resynced(communicator):
    product = await orm(make_product, "Pen")
    with override_settings(CHANNELS_BINDING=FAST):
        async with communicator() as watcher:
            await watch(watcher, product.pk)
            await orm(rename, product.pk, "A")
            assert (await next_push(watcher))["data"]["name"] == "A"
            assert (await next_push(watcher))["data"]["name"] == "A"
            # Redis restarted without its data: the counter starts again.
            sequencer_for(get_channel_layer()).counts.clear()
            await orm(rename_silently, product.pk, "B")
            frames = [await next_push(watcher, timeout=2) for _ in range(2)]
            events = {frame["event"] for frame in frames}
            assert events == {"shop.Product.retrieve#o", "shop.Product.resync#l"}


# -- resume -------------------------------------------------------------------


async def test_pushes_are_numbered_only_when_resume_is_asked_for(communicator):
    product = await orm(make_product, "Pen")
    async with communicator() as plain, communicator(path="/ws/?resume=1") as numbered:
        assert "resume" not in plain.connection
        assert numbered.connection["resume"]["window"] == 60
        for client in (plain, numbered):
            await client.request("shop.Product.retrieve", {"id": product.pk})
        await orm(rename, product.pk, "Ink")
        assert "pos" not in await next_push(plain)
        assert (await next_push(numbered))["pos"] == 1


async def test_a_cut_connection_resumes_with_what_it_missed(communicator, user):
    product = await orm(make_product, "Pen")
    first = communicator(user, path="/ws/?resume=1")
    await first.connect()
    token = first.connection["resume"]["token"]
    await first.request("shop.Product.retrieve#o", {"id": product.pk})
    await orm(rename, product.pk, "A")
    assert (await next_push(first))["pos"] == 1
    await first.disconnect()
    await orm(rename, product.pk, "B")
    await asyncio.sleep(0.2)  # pushed to the parked connection
    async with communicator(user, path="/ws/?resume=1") as second:
        reply = await second.request("resume", {"token": token, "pos": 1})
        assert reply["data"]["resumed"] is True, reply
        assert reply["data"]["token"] == token
        missed, second.pushes = second.pushes, []
        assert [(f["event"], f["data"]["name"], f["pos"]) for f in missed] == [
            ("shop.Product.retrieve#o", "B", 2)
        ]
        assert reply["data"]["pos"] == 2
        # The subscription carries on, numbered after what was replayed.
        await orm(rename, product.pk, "C")
        push = await next_push(second)
        assert (push["data"]["name"], push["pos"]) == ("C", 3)
        assert await second.receive_nothing(0.3)


async def test_resume_refuses_another_user_or_an_unknown_token(
    communicator, user, other_user
):
    product = await orm(make_product, "Pen")
    first = communicator(user, path="/ws/?resume=1")
    await first.connect()
    token = first.connection["resume"]["token"]
    await first.request("shop.Product.retrieve#o", {"id": product.pk})
    await first.disconnect()
    async with communicator(other_user, path="/ws/?resume=1") as thief:
        reply = await thief.request("resume", {"token": token, "pos": 0})
        assert reply["data"] == {"resumed": False}
        reply = await thief.request("resume", {"token": "nope", "pos": 0})
        assert reply["data"] == {"resumed": False}
        await orm(rename, product.pk, "A")
        assert await thief.receive_nothing(0.3)
    # The owner still can.
    async with communicator(user, path="/ws/?resume=1") as owner:
        reply = await owner.request("resume", {"token": token, "pos": 0})
        assert reply["data"]["resumed"] is True
        assert [f["data"]["name"] for f in owner.pushes] == ["A"]


async def test_resume_fails_when_what_was_missed_is_no_longer_kept(communicator, user):
    product = await orm(make_product, "Pen")
    settings = {**ROOT, "RESUME_BUFFER_BYTES": 200}
    with override_settings(CHANNELS_BINDING=settings):
        first = communicator(user, path="/ws/?resume=1")
        await first.connect()
        token = first.connection["resume"]["token"]
        await first.request("shop.Product.retrieve#o", {"id": product.pk})
        await first.disconnect()
        for name in ("A", "B", "C"):
            await orm(rename, product.pk, name)
            await asyncio.sleep(0.1)
        async with communicator(user, path="/ws/?resume=1") as second:
            reply = await second.request("resume", {"token": token, "pos": 0})
            assert reply["data"] == {"resumed": False}
            # Nothing was kept for it: the old subscription is gone.
            assert not Hub.current().parked
            await orm(rename, product.pk, "D")
            assert await second.receive_nothing(0.3)


async def test_a_parked_connection_expires(communicator, user):
    product = await orm(make_product, "Pen")
    with override_settings(CHANNELS_BINDING={**ROOT, "RESUME_SECONDS": 0.2}):
        first = communicator(user, path="/ws/?resume=1")
        await first.connect()
        token = first.connection["resume"]["token"]
        await first.request("shop.Product.retrieve#o", {"id": product.pk})
        await first.disconnect()
        await asyncio.sleep(0.5)
        hub = Hub.current()
        assert not hub.parked and hub.index.consumers() == 0
        async with communicator(user, path="/ws/?resume=1") as second:
            reply = await second.request("resume", {"token": token, "pos": 0})
            assert reply["data"] == {"resumed": False}


async def test_resume_comes_before_subscriptions(communicator, user):
    product = await orm(make_product, "Pen")
    async with communicator(user, path="/ws/?resume=1") as client:
        await client.request("shop.Product.retrieve", {"id": product.pk})
        reply = await client.request("resume", {"token": "x", "pos": 0})
        assert reply["error"]["status"] == 400, reply
        reply = await client.request("resume", {"token": 5})
        assert reply["error"]["status"] == 400, reply


# -- ordering -----------------------------------------------------------------


class _Request:
    """What the transport hands the hub once a reply is written."""

    def __init__(self, *holds):
        self.holds = list(holds)


async def test_pushes_wait_for_the_reply_of_a_read_in_progress(communicator):
    product = await orm(make_product, "Pen")
    async with communicator() as watcher:
        await watcher.request("shop.Product.retrieve#o", {"id": product.pk})
        hub = Hub.current()
        (subscription,) = hub.index.for_consumer(next(iter(hub.index._by_consumer)))
        # A read of this subscription is in progress (its reply not written)...
        await orm(subscription.hold)
        await orm(rename, product.pk, "Ink")
        # ...so the change is held back, not pushed before that reply,
        assert await watcher.receive_nothing(0.3)
        assert subscription.held == {str(product.pk)}
        # and computed again, from the database, once the reply is out.
        await orm(rename_silently, product.pk, "Ink 2")
        hub.unhold(_Request(subscription))
        push = await next_push(watcher)
        assert (push["event"], push["data"]["name"]) == (
            "shop.Product.retrieve#o",
            "Ink 2",
        )
        assert not subscription.held and subscription.reading == 0
