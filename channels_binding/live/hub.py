"""One hub per event loop: the process's only user of the channel layer.

Rather than giving every socket its own channel and adding it to a group per
stream, user and channel (one layer message per socket per change), each process's
hub joins each group once for all its local connections, receives one message per
change or notification, and sends to its local sockets itself:

* data changes: the hub joins ``cb.s.<stream>`` for every stream its connections
  watch and computes the pushes (see :mod:`.pushes`);
* notifications: it joins ``cb.u.<pk>``, ``cb.c.<name>`` and ``cb.all`` and sends
  each notification's pre-encoded text to the local members;
* ``notify.clients``: a client id is the hub's channel plus a local id, so a
  message for one client goes to its process's hub.

Consumers therefore never touch the layer: a Redis outage cannot break a socket. The
hub retries receiving, and joins its groups again once Redis is back. Messages that
arrive while a batch is being computed are merged into the next batch, so a burst of
saves to one row is pushed once.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import uuid
import weakref
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from ..settings import binding_settings
from .capture import CHANGE_MESSAGE
from .groups import DIRECT_MESSAGE, GROUP_MESSAGE, stream_group
from .pushes import compute_pushes
from .subscriptions import Subscription, SubscriptionIndex

logger = logging.getLogger("channels_binding")

#: Re-join groups this often: channel layers forget memberships after a day.
REJOIN_SECONDS = 3600
#: Wait before receiving again after the layer failed.
RETRY_SECONDS = 1.0

_hubs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class Hub:
    def __init__(self) -> None:
        self.index = SubscriptionIndex()
        # Connected consumers; the hub listens while any remain.
        self.members: set[Any] = set()
        self.clients: dict[str, Any] = {}
        self.layer = get_channel_layer()
        self.channel: str | None = None
        self.groups: set[str] = set()  # the groups this hub wants to be in
        # Notification groups: group → local consumers in it.
        self.local: dict[str, set[Any]] = {}
        self.pending: dict[str, dict[str, Any]] = {}
        self.notices: list[tuple[list[Any], str]] = []
        self._wakeup = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []

    @classmethod
    def current(cls) -> Hub:
        """The hub of the running event loop, made on first use."""
        loop = asyncio.get_running_loop()
        hub = _hubs.get(loop)
        if hub is None:
            hub = _hubs[loop] = cls()
        return hub

    # -- connections -------------------------------------------------------------

    async def add_client(self, consumer: Any) -> str:
        """Register a connection; returns its client id."""
        self.members.add(consumer)
        if self.layer is not None:
            async with self._lock:
                await self._start()
        local = uuid.uuid4().hex
        client_id = f"{self.channel}.{local}" if self.channel else local
        self.clients[client_id] = consumer
        return client_id

    async def release(self, consumer: Any) -> None:
        """Forget a disconnected consumer; stop listening when nobody is left."""
        self.index.remove_consumer(consumer)
        for group in [g for g, members in self.local.items() if consumer in members]:
            await self.leave(group, consumer)
        for client_id in [k for k, v in self.clients.items() if v is consumer]:
            del self.clients[client_id]
        self.members.discard(consumer)
        if not self.members and self._tasks:
            async with self._lock:
                if not self.members:
                    await self._stop()

    # -- groups ------------------------------------------------------------------

    async def watch_stream(self, stream: str, consumer: Any) -> None:
        """Make sure this process hears about ``stream``'s changes.

        Awaited before a subscribing request reads its rows, so no change that
        commits after the read can be missed.
        """
        self.members.add(consumer)
        await self._join_group(stream_group(stream))

    async def join(self, group: str, consumer: Any) -> None:
        """Add a local consumer to a notification group."""
        self.members.add(consumer)
        self.local.setdefault(group, set()).add(consumer)
        await self._join_group(group)

    async def leave(self, group: str, consumer: Any) -> None:
        members = self.local.get(group)
        if members is None:
            return
        members.discard(consumer)
        if not members:
            del self.local[group]
            if group in self.groups:
                self.groups.discard(group)
                await self._layer_call("group_discard", group)

    async def _join_group(self, group: str) -> None:
        if self.layer is None or group in self.groups:
            return
        async with self._lock:
            if group in self.groups:
                return
            await self._start()
            self.groups.add(group)
            # If the layer is down this fails; the receive loop joins again once
            # it is back.
            await self._layer_call("group_add", group)

    async def _layer_call(self, method: str, group: str) -> bool:
        try:
            await getattr(self.layer, method)(group, self.channel)
            return True
        except Exception:
            logger.warning("Channel layer %s(%s) failed", method, group, exc_info=True)
            return False

    def add(self, subscription: Subscription) -> tuple[Subscription, bool]:
        return self.index.add(subscription, binding_settings.MAX_SUBSCRIPTIONS)

    # -- lifecycle ---------------------------------------------------------------

    async def _start(self) -> None:
        if self._tasks:
            return
        # The default prefix: channels_redis reads every process-local channel
        # through one Redis key per prefix, and only the default one is polled.
        self.channel = await self.layer.new_channel()
        # A task copies the context it starts in. The hub outlives whichever request
        # started it (perhaps inside ``async_to_sync``, whose executor dies with the
        # call), so its tasks start from an empty context.
        clean = contextvars.Context()
        self._tasks = [
            clean.run(asyncio.create_task, loop())
            for loop in (self._receive_loop, self._push_loop, self._rejoin_loop)
        ]

    async def _stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        groups, self.groups = self.groups, set()
        for group in groups:
            await self._layer_call("group_discard", group)
        self.pending.clear()
        self.notices.clear()

    async def _receive_loop(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The layer is unreachable (Redis restarting): keep serving, and
                # join the groups again, since a restarted Redis forgot them.
                logger.warning("Channel layer receive failed", exc_info=True)
                await asyncio.sleep(RETRY_SECONDS)
                await self._rejoin()
                continue
            self._take(message)

    def _take(self, message: dict) -> None:
        kind = message.get("type")
        if kind == GROUP_MESSAGE:
            members = list(self.local.get(message["group"], ()))
            self.notices.append((members, message["text"]))
        elif kind == DIRECT_MESSAGE:
            consumer = self.clients.get(message.get("client"))
            if consumer is None:
                return
            self.notices.append(([consumer], message["text"]))
        elif kind == CHANGE_MESSAGE:
            keys = self.pending.setdefault(message["stream"], {})
            for pk in message.get("pks", ()):
                keys[str(pk)] = pk
        else:
            return
        self._wakeup.set()

    async def _push_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            notices, self.notices = self.notices, []
            for consumers, text in notices:
                for consumer in consumers:
                    await self._send(consumer, text)
            batch, self.pending = self.pending, {}
            for stream, keys in batch.items():
                await self.push(stream, list(keys.values()))

    async def push(self, stream: str, pks: list[Any]) -> None:
        try:
            frames = await database_sync_to_async(compute_pushes)(
                self.index, stream, pks
            )
        except Exception:
            logger.exception("Could not compute pushes for %s", stream)
            return
        for consumer, text in frames:
            await self._send(consumer, text)

    async def _send(self, consumer: Any, text: str) -> None:
        try:
            await consumer.push_text(text)
        except Exception:
            logger.debug("Push to a closing socket failed", exc_info=True)

    async def _rejoin_loop(self) -> None:
        while True:
            await asyncio.sleep(REJOIN_SECONDS)
            await self._rejoin()

    async def _rejoin(self) -> None:
        for group in list(self.groups):
            await self._layer_call("group_add", group)
