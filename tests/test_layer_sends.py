"""One change costs one ``group_send`` per stream, never one message per watcher
(SPEC section 5), counted on a real in-memory channel layer."""

import pytest
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer
from django.test import override_settings

from tests.shop.models import Product

pytestmark = pytest.mark.django_db(transaction=True)


class CountingLayer(InMemoryChannelLayer):
    """Channels' in-memory layer, counting what is sent through it."""

    sent: list = []

    async def send(self, channel, message):
        CountingLayer.sent.append(("send", message.get("type")))
        await super().send(channel, message)

    async def group_send(self, group, message):
        CountingLayer.sent.append(("group_send", group))
        await super().group_send(group, message)


LAYER = {"default": {"BACKEND": f"{__name__}.CountingLayer"}}


@database_sync_to_async
def save(pk, name):
    product = Product.objects.get(pk=pk)
    product.name = name
    product.save()


@override_settings(CHANNEL_LAYERS=LAYER)
async def test_one_change_is_one_group_send_for_every_watcher(communicator, user):
    pk = (await database_sync_to_async(Product.objects.create)(name="P", price=1)).pk
    clients = [communicator() for _ in range(5)] + [communicator(user)]
    for client in clients:
        await client.connect()
    try:
        for client in clients:
            await client.request("shop.Product.retrieve", {"id": pk})
            await client.request("shop.Product.list#all", {})
        CountingLayer.sent.clear()
        await save(pk, "renamed")
        for client in clients:
            pushes = [await client.receive_json_from(3) for _ in range(2)]
            assert sorted(push["event"] for push in pushes) == [
                "shop.Product.retrieve",
                "shop.Product.retrieve#all",
            ]
            assert all(push["data"]["name"] == "renamed" for push in pushes)
        # one group_send, which the layer delivers to the one hub of this
        # process (the in-memory layer's group_send calls send per member)
        assert CountingLayer.sent == [
            ("group_send", "cb.s.shop.Product"),
            ("send", "binding.change"),
        ]
    finally:
        for client in clients:
            await client.disconnect()
