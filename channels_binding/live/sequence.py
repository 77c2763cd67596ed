"""Positions of change messages: one counter per stream, kept beside the layer.

Every change message carries ``seq``, the next value of its stream's counter, so a
hub can tell that it missed one: a hole in the numbers it received, or a counter
ahead of the last number it saw. The counter lives where the layer lives, so that
every process (servers, workers, management commands) counts on the same one:

* ``channels_redis`` (both layers): ``INCR`` of ``<prefix>:cb:seq:<stream>`` on the
  Redis server the key hashes to, through the layer's own connections. Each server
  of a sharded layer also holds ``<prefix>:cb:epoch``, set by the first hub that
  finds it missing: a new epoch means Redis lost its data (a restart without
  persistence), so every count before it means nothing.
* the in-memory layer: a counter on the layer object (one process).
* any other layer: no counter; changes are sent without ``seq`` and hubs detect
  nothing (docs/live.rst says so).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from channels.layers import InMemoryChannelLayer

KEY = "{prefix}:cb:seq:{stream}"
EPOCH_KEY = "{prefix}:cb:epoch"


class Sequencer:
    """No counter: every method answers ``None``."""

    async def next(self, stream: str) -> int | None:
        return None

    async def current(self, streams: list[str]) -> tuple[Any, dict[str, int]] | None:
        """``(epoch, {stream: last value})`` for the streams, or ``None``."""
        return None


class MemorySequencer(Sequencer):
    def __init__(self, layer: Any) -> None:
        self.counts: dict[str, int] = defaultdict(int)
        self.epoch = uuid.uuid4().hex

    async def next(self, stream: str) -> int:
        self.counts[stream] += 1
        return self.counts[stream]

    async def current(self, streams: list[str]) -> tuple[Any, dict[str, int]]:
        return self.epoch, {stream: self.counts.get(stream, 0) for stream in streams}


class RedisSequencer(Sequencer):
    """Both channels_redis layers; ``client(key)`` is the Redis client of the server
    a key hashes to, ``shards()`` one client per server."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.prefix = _layer_prefix(layer)

    def key(self, stream: str) -> str:
        return KEY.format(prefix=self.prefix, stream=stream)

    def clients(self) -> list[Any]:
        layer = self.layer
        if hasattr(layer, "ring_size"):  # RedisChannelLayer
            return [layer.connection(index) for index in range(layer.ring_size)]
        shards = layer._get_layer()._shards  # RedisPubSubChannelLayer, per loop
        for shard in shards:
            shard._ensure_redis()
        return [shard._redis for shard in shards]

    def index(self, key: str) -> int:
        layer = self.layer
        if hasattr(layer, "ring_size"):
            return layer.consistent_hash(key)
        # channels_redis is an optional dependency: imported only when used.
        from channels_redis.utils import _consistent_hash

        return _consistent_hash(key, len(layer._get_layer()._shards))

    async def next(self, stream: str) -> int:
        key = self.key(stream)
        return int(await self.clients()[self.index(key)].incr(key))

    async def current(self, streams: list[str]) -> tuple[Any, dict[str, int]]:
        clients = self.clients()
        by_index: dict[int, list[str]] = defaultdict(list)
        for stream in streams:
            by_index[self.index(self.key(stream))].append(stream)
        epoch_key = EPOCH_KEY.format(prefix=self.prefix)
        epochs, values = [], {}
        for index, client in enumerate(clients):
            mine = by_index.get(index, [])
            found = await client.mget([epoch_key, *(self.key(s) for s in mine)])
            epoch = found[0]
            if epoch is None:
                await client.set(epoch_key, uuid.uuid4().hex, nx=True)
                epoch = await client.get(epoch_key)
            epochs.append(epoch)
            for stream, value in zip(mine, found[1:], strict=True):
                values[stream] = int(value or 0)
        return tuple(epochs), values


def _layer_prefix(layer: Any) -> str:
    prefix = getattr(layer, "prefix", None)
    if prefix is None and hasattr(layer, "_get_layer"):
        prefix = layer._get_layer().prefix
    return prefix or "asgi"


_sequencers: dict[int, tuple[Any, Sequencer]] = {}


def sequencer_for(layer: Any) -> Sequencer:
    """The counter of ``layer`` (one per layer object)."""
    known = _sequencers.get(id(layer))
    if known is not None and known[0] is layer:
        return known[1]
    if isinstance(layer, InMemoryChannelLayer):
        sequencer: Sequencer = MemorySequencer(layer)
    elif type(layer).__module__.startswith("channels_redis") or any(
        cls.__module__.startswith("channels_redis") for cls in type(layer).__mro__
    ):
        sequencer = RedisSequencer(layer)
    else:
        sequencer = Sequencer()
    _sequencers[id(layer)] = (layer, sequencer)
    return sequencer
