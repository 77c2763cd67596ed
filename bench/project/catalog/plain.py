"""Plain Channels consumers: the baselines a developer would write by hand."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import (
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
)

from .models import Product
from .serializers import ProductSerializer


class HandRetrieveConsumer(AsyncJsonWebsocketConsumer):
    """Retrieve by hand: the same frames as channels-binding, the same DRF
    serializer and query, one database hop per request."""

    async def receive_json(self, content, **kwargs):
        try:
            data = await self.retrieve(content["data"]["id"])
        except (KeyError, TypeError, Product.DoesNotExist):
            reply = {"event": content.get("event"), "error": {"status": 404}}
        else:
            reply = {"event": content["event"], "data": data}
        reply["request_id"] = content.get("request_id")
        await self.send_json(reply)

    @database_sync_to_async
    def retrieve(self, pk):
        return ProductSerializer(Product.objects.get(pk=pk)).data


class EchoConsumer(AsyncJsonWebsocketConsumer):
    """Sends every JSON frame back: what the server and Channels cost alone."""

    async def receive_json(self, content, **kwargs):
        await self.send_json(content)


class IdleConsumer(AsyncWebsocketConsumer):
    """Accepts and does nothing: the memory of a bare Channels connection (with its
    own channel-layer channel, as every Channels consumer has)."""
