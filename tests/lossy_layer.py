"""Channel layers that lose change messages on purpose, for the stress harness.

Each class is a real layer (``channels_redis``'s two, Channels' in-memory one) whose
``group_send`` drops a fraction of the ``binding.change`` messages: ``CB_LOSS`` in the
environment (``0.2`` drops one in five; unset or ``0`` drops none). Every other
message (notifications, direct messages) goes through. Select one with the backend
variables :mod:`tests.server_settings` reads::

    CB_REDIS_BACKEND=tests.lossy_layer.LossyRedisChannelLayer
    CB_REDIS_BACKEND=tests.lossy_layer.LossyRedisPubSubChannelLayer
    CB_LAYER_BACKEND=tests.lossy_layer.LossyInMemoryChannelLayer   (no Redis)

A drop happens where a lost network message would: after the sender did whatever it
does before sending (numbering the change, say), so a server that detects holes in
what it receives can detect these. ``CB_LOSS_LOG``, when set, is a file that gets one
line per dropped message (``<time> <pid> <stream> <pks>``), so a harness can count them.
"""

from __future__ import annotations

import os
import random
import time

from channels.layers import InMemoryChannelLayer
from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer

CHANGE_MESSAGE = "binding.change"


class _Loss:
    """Decides which change messages to drop, and logs the drops."""

    def __init__(self) -> None:
        self.rate = float(os.environ.get("CB_LOSS") or 0)
        seed = os.environ.get("CB_LOSS_SEED")
        # One stream of choices per process: the processes must not drop in step.
        self.random = random.Random(f"{seed}-{os.getpid()}" if seed else None)
        self.log = os.environ.get("CB_LOSS_LOG")
        self.dropped = 0

    def drops(self, message: dict) -> bool:
        if self.rate <= 0 or message.get("type") != CHANGE_MESSAGE:
            return False
        if self.random.random() >= self.rate:
            return False
        self.dropped += 1
        if self.log:
            with open(self.log, "a") as log:
                stream, pks = message.get("stream"), message.get("pks")
                log.write(f"{time.time():.3f} {os.getpid()} {stream} {pks}\n")
        return True


class _Lossy:
    """What the three lossy layers add to theirs: ``group_send`` drops what
    ``_Loss`` picks, and sends the rest with :meth:`_group_send`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.loss = _Loss()

    async def group_send(self, group, message):
        if self.loss.drops(message):
            return
        await self._group_send(group, message)

    async def _group_send(self, group, message):
        await super().group_send(group, message)


class LossyRedisChannelLayer(_Lossy, RedisChannelLayer):
    pass


class LossyRedisPubSubChannelLayer(_Lossy, RedisPubSubChannelLayer):
    # RedisPubSubChannelLayer answers group_send through __getattr__ (one layer per
    # event loop), so there is no class attribute for super() to find.
    async def _group_send(self, group, message):
        await self._get_layer().group_send(group, message)


class LossyInMemoryChannelLayer(_Lossy, InMemoryChannelLayer):
    pass
