"""Receiving a hub's messages in batches.

``layer.receive()`` gives one message per call. On ``RedisChannelLayer`` each call
is four Redis round trips (a clean-up script, ``BZPOPMIN``, a backup ``ZADD``, and
a ``ZPOPMIN`` of the backup that the next call waits for), awaited on the event
loop that also writes every push. Under a burst the hub then takes the changes
more slowly than they are committed: they wait in Redis, are barely coalesced,
and the lag grows without end.

:func:`receiver_for` returns what a hub calls instead: ``receive(channel)``
answers with every message already waiting, up to ``BATCH`` of them, in one round
trip (``ZPOPMIN <key> <count>``), and blocks (``BZPOPMIN``) only when nothing is
waiting. It skips channels_redis' backup queue: a message lost because the process
died between the pop and its processing is a hole in the stream's numbers, which
the hub repairs like any other loss (see :mod:`.hub`).

The other layers already hand over waiting messages without a round trip (the
pub/sub layer and the in-memory layer read a local queue), so their receiver
calls ``layer.receive()`` again while messages are queued.
"""

from __future__ import annotations

import asyncio
from typing import Any

#: The most messages taken in one round trip.
BATCH = 500


class Receiver:
    """Any layer: ``layer.receive()`` once, then whatever is queued locally."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer

    async def receive(self, channel: str) -> list[dict]:
        messages = [await self.layer.receive(channel)]
        queue = self._local_queue(channel)
        # With messages queued, ``receive()`` answers without waiting.
        while queue is not None and len(messages) < BATCH and not queue.empty():
            messages.append(await self.layer.receive(channel))
        return messages

    def _local_queue(self, channel: str) -> asyncio.Queue | None:
        """The layer's in-process queue of ``channel``, if it has one."""
        layer = self.layer
        if hasattr(layer, "_get_layer"):  # RedisPubSubChannelLayer, per loop
            queue = layer._get_layer().channels.get(channel)
        else:  # InMemoryChannelLayer keeps (expiry, message) pairs
            return None
        return queue if isinstance(queue, asyncio.Queue) else None


class RedisReceiver(Receiver):
    """``RedisChannelLayer``: many messages per round trip, straight from the
    channel's sorted set."""

    async def receive(self, channel: str) -> list[dict]:
        layer = self.layer
        name = layer.non_local_name(channel)
        key = layer.prefix + name
        connection = layer.connection(layer.consistent_hash(name))
        while True:
            popped = await connection.zpopmin(key, BATCH)
            if popped:
                contents = [member for member, _score in popped]
                break
            found = await connection.bzpopmin(key, timeout=layer.brpop_timeout)
            if found is not None:
                contents = [found[1]]
                break
        messages = []
        for content in contents:
            message = layer.deserialize(content)
            target = message.pop("__asgi_channel__", channel)
            # A group message names every local channel it is for; a message
            # for another channel of this process (a stopped hub's) is dropped.
            if target == channel or (isinstance(target, list) and channel in target):
                messages.append(message)
        return messages


def receiver_for(layer: Any) -> Receiver:
    if hasattr(layer, "ring_size") and hasattr(layer, "brpop_timeout"):
        return RedisReceiver(layer)
    return Receiver(layer)
