"""The fan-out baseline: every socket in one channel-layer group, and a post_save
receiver that serializes the change once and sends the encoded frame to the group.
No per-recipient check of any kind."""

from __future__ import annotations

import json

from asgiref.sync import async_to_sync
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import Product
from .serializers import ProductSerializer

GROUP = "bench-watchers"


class GroupWatcherConsumer(AsyncWebsocketConsumer):
    groups = [GROUP]  # joined by Channels before the handshake is accepted

    async def product_changed(self, message):
        await self.send(text_data=message["text"])


@receiver(post_save, sender=Product, dispatch_uid="bench.groupsend")
def push_product(sender, instance, **kwargs):
    text = json.dumps(
        {"event": "catalog.Product.retrieve", "data": ProductSerializer(instance).data}
    )
    message = {"type": "product.changed", "text": text}
    transaction.on_commit(
        lambda: async_to_sync(get_channel_layer().group_send)(GROUP, message)
    )
