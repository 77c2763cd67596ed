"""Plain Channels consumers: the baselines a developer would write by hand."""

from __future__ import annotations

import json

from channels.db import database_sync_to_async
from channels.generic.websocket import (
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
)
from django.db import transaction
from django.db.models import Q
from rest_framework.exceptions import ValidationError

from .models import Product
from .serializers import ProductSerializer

#: The group of the hand-written consumer's watchers (``subscribe``).
GROUP = "bench-hand-watchers"
PAGE_SIZE = 25


class HandConsumer(AsyncJsonWebsocketConsumer):
    """The actions by hand: the same frames as channels-binding, the same DRF
    serializer and queries, one database hop per request. ``update`` saves in a
    transaction, then ``group_send``\\ s the new state to the connections that sent
    ``subscribe``."""

    async def receive_json(self, content, **kwargs):
        event = content.get("event") or ""
        handler = getattr(self, f"do_{event.rpartition('.')[2]}", None)
        try:
            if handler is None:
                raise KeyError(event)
            data = await handler(content.get("data") or {})
        except (KeyError, TypeError, Product.DoesNotExist):
            reply = {"event": event, "error": {"status": 404}}
        except PermissionError:
            reply = {"event": event, "error": {"status": 403}}
        except ValidationError as exc:
            reply = {"event": event, "error": {"status": 400, "detail": exc.detail}}
        else:
            reply = {"event": event, "data": data}
        reply["request_id"] = content.get("request_id")
        await self.send_json(reply)

    async def do_retrieve(self, data):
        return await self.retrieve(data["id"])

    @database_sync_to_async
    def retrieve(self, pk):
        return ProductSerializer(Product.objects.get(pk=pk)).data

    async def do_list(self, data):
        return await self.page(Product.objects.all(), data.get("page", 1))

    async def do_search(self, data):
        """``query``: every word in the name or the description; ``filters``:
        ``in_stock`` only."""
        queryset = Product.objects.all()
        for word in data.get("query", "").split():
            queryset = queryset.filter(
                Q(name__icontains=word) | Q(description__icontains=word)
            )
        filters = data.get("filters") or {}
        if "in_stock" in filters:
            queryset = queryset.filter(in_stock=filters["in_stock"])
        return await self.page(queryset, data.get("page", 1))

    @database_sync_to_async
    def page(self, queryset, page):
        queryset = queryset.order_by("pk")
        offset = (page - 1) * PAGE_SIZE
        rows = ProductSerializer(queryset[offset : offset + PAGE_SIZE], many=True)
        return {
            "page": page,
            "limit": PAGE_SIZE,
            "count": queryset.count(),
            "rows": rows.data,
        }

    async def do_update(self, data):
        if not self.scope["user"].is_authenticated:
            raise PermissionError
        saved = await self.update(data)
        text = json.dumps({"event": "catalog.Product.retrieve", "data": saved})
        await self.channel_layer.group_send(
            GROUP, {"type": "product.changed", "text": text}
        )
        return saved

    @database_sync_to_async
    def update(self, data):
        with transaction.atomic():
            product = Product.objects.get(pk=data["id"])
            serializer = ProductSerializer(product, data=data, partial=True)
            serializer.is_valid(raise_exception=True)
            serializer.save()
        return serializer.data

    async def do_subscribe(self, data):
        await self.channel_layer.group_add(GROUP, self.channel_name)
        return {"subscribed": True}

    async def product_changed(self, message):
        await self.send(text_data=message["text"])


class EchoConsumer(AsyncJsonWebsocketConsumer):
    """Sends every JSON frame back: what the server and Channels cost alone."""

    async def receive_json(self, content, **kwargs):
        await self.send_json(content)


class IdleConsumer(AsyncWebsocketConsumer):
    """Accepts and does nothing: the memory of a bare Channels connection (with its
    own channel-layer channel, as every Channels consumer has)."""
