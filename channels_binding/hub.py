"""One hub per event loop: the process's single listener for data changes and
notifications.

Rather than adding every socket to a channel-layer group per stream (one layer
message per watcher per change), each process's hub joins the group of every
stream its connections watch, receives one message per change, and pushes to its
local sockets itself. A change therefore costs one ``group_send`` and one layer
delivery per server process, and the per-watcher work is a permission check and a
``send`` on the socket (see :mod:`.pushes`).

Notifications to users, channels and everyone work the same way: the hub joins
``cb.u.<pk>``, ``cb.c.<name>`` and ``cb.all`` once for all its local members and
sends each notification's pre-encoded text to them.

Messages that arrive while a batch is being computed are merged into the next
batch, so a burst of saves to one row is pushed once.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import weakref
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from .groups import stream_group
from .live import CHANGE_MESSAGE
from .notify import GROUP_MESSAGE
from .pushes import compute_pushes
from .subscriptions import Subscription, SubscriptionIndex

logger = logging.getLogger("channels_binding")

#: Re-join groups this often: channel layers forget memberships after a day.
REJOIN_SECONDS = 3600

_hubs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class Hub:
    def __init__(self) -> None:
        self.index = SubscriptionIndex()
        # Consumers that may hold subscriptions; the hub listens while any remain.
        self.members: set[Any] = set()
        self.layer = get_channel_layer()
        self.channel: str | None = None
        self.groups: set[str] = set()
        self.pending: dict[str, dict[str, Any]] = {}
        self.notices: list[tuple[str, str]] = []
        # Notification groups: group → local consumers in it.
        self.local: dict[str, set[Any]] = {}
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

    # -- subscriptions -----------------------------------------------------------

    async def watch_stream(self, stream: str, consumer: Any) -> None:
        """Make sure this process hears about ``stream``'s changes.

        Awaited before a subscribing request reads its rows, so no change that
        commits after the read can be missed.
        """
        self.members.add(consumer)
        group = stream_group(stream)
        if group in self.groups or self.layer is None:
            return
        async with self._lock:
            if group in self.groups:
                return
            await self._start()
            await self.layer.group_add(group, self.channel)
            self.groups.add(group)

    async def join(self, group: str, consumer: Any) -> None:
        """Add a local consumer to a notification group."""
        self.members.add(consumer)
        members = self.local.setdefault(group, set())
        members.add(consumer)
        if self.layer is None or group in self.groups:
            return
        async with self._lock:
            if group in self.groups or consumer not in members:
                return
            await self._start()
            await self.layer.group_add(group, self.channel)
            self.groups.add(group)

    async def leave(self, group: str, consumer: Any) -> None:
        members = self.local.get(group)
        if members is None:
            return
        members.discard(consumer)
        if not members:
            del self.local[group]
            if group in self.groups:
                self.groups.discard(group)
                await self._discard(group)

    def add(self, subscription: Subscription) -> tuple[Subscription, bool]:
        return self.index.add(subscription)

    async def release(self, consumer: Any) -> None:
        """Forget a disconnected consumer; stop listening when nobody is left."""
        self.index.remove_consumer(consumer)
        for group in [g for g, members in self.local.items() if consumer in members]:
            await self.leave(group, consumer)
        self.members.discard(consumer)
        if not self.members and self._tasks:
            async with self._lock:
                if not self.members:
                    await self._stop()

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
            await self._discard(group)
        self.pending.clear()
        self.notices.clear()

    async def _discard(self, group: str) -> None:
        try:
            await self.layer.group_discard(group, self.channel)
        except Exception:
            logger.warning("Could not leave group %s", group, exc_info=True)

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
                await asyncio.sleep(1)
                await self._rejoin()
                continue
            kind = message.get("type")
            if kind == GROUP_MESSAGE:
                self.notices.append((message["group"], message["text"]))
            elif kind == CHANGE_MESSAGE:
                keys = self.pending.setdefault(message["stream"], {})
                for pk in message.get("pks", ()):
                    keys[str(pk)] = pk
            else:
                continue
            self._wakeup.set()

    async def _push_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            notices, self.notices = self.notices, []
            for group, text in notices:
                for consumer in list(self.local.get(group, ())):
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
            try:
                await self.layer.group_add(group, self.channel)
            except Exception:
                logger.warning("Could not re-join group %s", group, exc_info=True)
