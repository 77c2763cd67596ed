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

Nothing is lost silently. Change messages are numbered per stream (see
:mod:`.sequence`); the hub tracks the numbers it received, and every
``LIVE_CHECK_SECONDS`` compares them with the counters. A number still missing
after ``LIVE_GAP_SECONDS``, a counter that went back or a new epoch (Redis lost its
data), a failed receive or check (Redis unreachable): the stream, or every stream,
is **resynced** (:func:`.pushes.resync_pushes`) once the layer answers again.

Credentials that end without a signal (a JWT's ``exp``) are found by asking them
again every ``AUTH_RECHECK_SECONDS``: one timer per hub for all its connections
(see ``ConnectionMixin.recheck_identity``).

A connection that can resume (see ``websocket.consumers``) is **parked** when its
socket closes: its subscriptions stay, and what is pushed to it is kept for
``RESUME_SECONDS``, for a new connection of the same user to claim.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import uuid
import weakref
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from ..settings import binding_settings
from .capture import CHANGE_MESSAGE, send_unsent
from .groups import (
    DIRECT_MESSAGE,
    GROUP_MESSAGE,
    HUB_CHANNEL_PREFIX,
    REVOKE_MESSAGE,
    give_hubs_capacity,
    stream_group,
)
from .pushes import compute_pushes, resync_pushes
from .receiver import receiver_for
from .revocation import RECHECK_TICKS
from .sequence import sequencer_for
from .subscriptions import Subscription, SubscriptionIndex

logger = logging.getLogger("channels_binding")

#: Wait before receiving again after the layer failed.
RETRY_SECONDS = 1.0


class Track:
    """The change numbers of one stream this hub received: all up to ``last``,
    some beyond (``ahead``); ``target`` is the highest known to exist, ``since``
    when a number below it was first found missing."""

    __slots__ = ("last", "ahead", "target", "since")

    def __init__(self, last: int) -> None:
        self.last = self.target = last
        self.ahead: set[int] = set()
        self.since: float | None = None

    def received(self, seq: int, now: float) -> None:
        if seq <= self.last:
            return
        if seq == self.last + 1:
            self.last = seq
            while self.last + 1 in self.ahead:
                self.last += 1
                self.ahead.discard(self.last)
        else:
            self.ahead.add(seq)
        self._note(seq, now)

    def counted(self, value: int, now: float) -> bool:
        """The counter reads ``value``; False if it went back (Redis lost it)."""
        if value < self.last:
            return False
        self._note(value, now)
        return True

    def _note(self, value: int, now: float) -> None:
        self.target = max(self.target, value)
        if self.last >= self.target:
            self.since = None
        elif self.since is None:
            self.since = now

    def overdue(self, now: float, grace: float) -> bool:
        return self.since is not None and now - self.since >= grace


_hubs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _in_clean_context(coroutine) -> asyncio.Task:
    """A task for one of the hub's loops. A task copies the context it starts in;
    the hub outlives whichever request started it (perhaps inside
    ``async_to_sync``, whose executor dies with the call), so its tasks start from
    an empty context."""
    return contextvars.Context().run(asyncio.create_task, coroutine)


#: The longest a stopping hub waits for its cancelled tasks to end.
STOP_WAIT_SECONDS = 1.0


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
        # Delivery guarantees: what was received per stream, what needs a resync.
        self.sequencer = sequencer_for(self.layer) if self.layer is not None else None
        self.receiver = receiver_for(self.layer) if self.layer is not None else None
        self.streams: set[str] = set()  # the streams whose groups it joined
        self.tracks: dict[str, Track] = {}
        self.epoch: Any = None
        self.lost = False  # the layer failed: every stream may have missed changes
        self.resyncs: set[str] = set()
        self.resynced = 0  # streams resynced so far (for tests and logs)
        # Closed connections kept for a resume: token → consumer.
        self.parked: dict[str, Any] = {}
        self._wakeup = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []
        self._background: set[asyncio.Task] = set()
        self._recheck: asyncio.Task | None = None

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
        if self._recheck is None and binding_settings.AUTH_RECHECK_SECONDS:
            # Without a channel layer too: expiry needs no messages.
            self._recheck = _in_clean_context(self._recheck_loop())
        local = uuid.uuid4().hex
        client_id = f"{self.channel}.{local}" if self.channel else local
        self.clients[client_id] = consumer
        return client_id

    def park(self, consumer: Any, token: str, seconds: float) -> None:
        """Keep a closed connection's subscriptions for ``seconds``, for
        :meth:`claim`; it is released after that."""
        self.parked[token] = consumer
        loop = asyncio.get_running_loop()
        loop.call_later(seconds, self._expire, token, consumer)

    def _expire(self, token: str, consumer: Any) -> None:
        if self.parked.get(token) is consumer:
            del self.parked[token]
            self._release_later(consumer)

    def _forget_parked(self, consumer: Any) -> None:
        for token, parked in list(self.parked.items()):
            if parked is consumer:
                del self.parked[token]
                self._release_later(consumer)

    def _release_later(self, consumer: Any) -> None:
        """:meth:`release` from code that cannot await (timers, the receive loop)."""
        task = asyncio.get_running_loop().create_task(self.release(consumer))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def claim(self, token: str, consumer: Any, same: Any) -> Any:
        """Give a parked connection's subscriptions, groups and client ids to
        ``consumer``; returns the parked one, or ``None`` if there is none for
        ``token`` or ``same(parked)`` is false."""
        old = self.parked.get(token)
        if old is None or not same(old):
            return None
        del self.parked[token]
        self.index.move(old, consumer)
        for members in self.local.values():
            if old in members:
                members.discard(old)
                members.add(consumer)
        for client_id, member in list(self.clients.items()):
            if member is old:
                self.clients[client_id] = consumer
        self.members.discard(old)
        self.members.add(consumer)
        return old

    async def release(self, consumer: Any) -> None:
        """Forget a disconnected consumer; stop listening when nobody is left."""
        self.index.remove_consumer(consumer)
        for group in [g for g, members in self.local.items() if consumer in members]:
            await self.leave(group, consumer)
        for client_id in [k for k, v in self.clients.items() if v is consumer]:
            del self.clients[client_id]
        self.members.discard(consumer)
        if not self.members and self._recheck is not None:
            self._recheck.cancel()
            self._recheck = None
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
        self.streams.add(stream)
        await self._join_group(stream_group(stream), stream)

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

    async def _join_group(self, group: str, stream: str | None = None) -> None:
        if self.layer is None or group in self.groups:
            return
        async with self._lock:
            if group in self.groups:
                return
            await self._start()
            self.groups.add(group)
            # If the layer is down this fails; the receive loop joins again once
            # it is back.
            joined = await self._layer_call("group_add", group)
            if not joined:
                self.lost = True  # the check loop joins again, then resyncs
            elif stream is not None:
                await self._baseline(stream)

    async def _baseline(self, stream: str) -> None:
        """Count a stream's changes from its counter, read after joining its
        group: every later change reaches this hub or leaves a hole."""
        try:
            counted = await self.sequencer.current([stream])
        except Exception:
            logger.warning("Cannot read the change counter of %s", stream, exc_info=1)
            self.lost = True
            return
        if counted is not None:
            epoch, values = counted
            self.tracks[stream] = Track(values[stream])
            if self.epoch is None:
                self.epoch = epoch

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
        give_hubs_capacity(self.layer, binding_settings.HUB_CAPACITY)
        # One channel per hub, named so that senders give it HUB_CAPACITY.
        self.channel = await self.layer.new_channel(prefix=HUB_CHANNEL_PREFIX)
        self._tasks = [
            _in_clean_context(loop())
            for loop in (
                self._receive_loop,
                self._push_loop,
                self._rejoin_loop,
                self._check_loop,
            )
        ]

    async def _stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded: a cancelled task may wait for its database work (asgiref
            # lets a running thread finish) or for the pub/sub layer's clean-up,
            # and the lock held here keeps new connections from being accepted.
            await asyncio.wait(tasks, timeout=STOP_WAIT_SECONDS)
        groups, self.groups = self.groups, set()
        for group in groups:
            await self._layer_call("group_discard", group)
        self.pending.clear()
        self.notices.clear()
        self.tracks.clear()
        self.streams.clear()
        self.resyncs.clear()
        self.lost = False
        self.epoch = None

    async def _receive_loop(self) -> None:
        while True:
            try:
                messages = await self.receiver.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The layer is unreachable (Redis restarting): keep serving. What
                # was sent meanwhile is lost: the check loop joins the groups
                # again (a restarted Redis forgot them) and resyncs every stream.
                logger.warning("Channel layer receive failed", exc_info=True)
                self.lost = True
                await asyncio.sleep(RETRY_SECONDS)
                continue
            for message in messages:
                try:
                    self._take(message)
                except Exception:
                    logger.exception("Cannot handle a channel layer message")

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
        elif kind == REVOKE_MESSAGE:
            # At once, not in the push loop: no push may leave after this.
            for consumer in list(self.local.get(message["group"], ())):
                try:
                    if consumer.revoke(message):
                        self._forget_parked(consumer)
                except Exception:
                    logger.exception("Could not revoke a connection")
            return
        elif kind == CHANGE_MESSAGE:
            stream = message["stream"]
            keys = self.pending.setdefault(stream, {})
            for pk in message.get("pks", ()):
                keys[str(pk)] = pk
            track = self.tracks.get(stream)
            seq = message.get("seq")
            if track is not None and isinstance(seq, int):
                track.received(seq, time.monotonic())
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
            resyncs, self.resyncs = self.resyncs, set()
            for stream in resyncs:
                await self._resync(stream)

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

    async def _resync(self, stream: str) -> None:
        try:
            frames = await database_sync_to_async(resync_pushes)(self.index, stream)
        except Exception:
            logger.exception("Could not resync %s", stream)
            self.resyncs.add(stream)  # tried again with the next batch
            return
        self.resynced += 1
        for consumer, text in frames:
            await self._send(consumer, text)

    async def _send(self, consumer: Any, text: str) -> None:
        try:
            await consumer.push_text(text)
        except Exception:
            logger.debug("Push to a closing socket failed", exc_info=True)

    def unhold(self, request: Any) -> None:
        """A request's reply is written: compute again what its reads held back."""
        for subscription in request.holds:
            keys = subscription.unhold()
            if keys:
                pending = self.pending.setdefault(subscription.stream, {})
                pending.update((key, key) for key in keys)
                self._wakeup.set()
        request.holds.clear()

    # -- delivery guarantees ----------------------------------------------------

    def resync(self, stream: str) -> None:
        """Bring every local watcher of ``stream`` back to the truth (soon)."""
        if not binding_settings.LIVE_RESYNC:
            logger.warning("Changes of %s may have been missed (resync is off)", stream)
            return
        logger.info("Resyncing %s: changes may have been missed", stream)
        self.resyncs.add(stream)
        self._wakeup.set()

    async def _check_loop(self) -> None:
        while True:
            await asyncio.sleep(binding_settings.LIVE_CHECK_SECONDS)
            await self.check()

    async def check(self) -> None:
        """Compare what was received with the counters; resync what may be lost.

        After a layer failure, first join every group again (a restarted Redis
        forgot them), then resync every stream: a change committed before the
        join may never have been sent, one after it is received."""
        streams = [s for s in self.streams if stream_group(s) in self.groups]
        try:
            if self.lost:
                for group in list(self.groups):
                    await self.layer.group_add(group, self.channel)
            await send_unsent(self.layer)
            counted = await self.sequencer.current(streams) if streams else None
        except Exception:
            if not self.lost:
                logger.warning("The channel layer does not answer", exc_info=True)
            self.lost = True
            return
        epoch, values = counted if counted is not None else (self.epoch, {})
        now = time.monotonic()
        if self.lost or (epoch != self.epoch and self.epoch is not None):
            if self.lost:
                logger.warning("The channel layer is back: resyncing every stream")
            self.lost = False
            self.epoch = epoch
            for stream in streams:
                if stream in values:
                    self.tracks[stream] = Track(values[stream])
                self.resync(stream)
            return
        self.epoch = epoch
        grace = binding_settings.LIVE_GAP_SECONDS
        for stream, value in values.items():
            track = self.tracks.get(stream)
            if track is None:
                self.tracks[stream] = Track(value)
            elif not track.counted(value, now) or track.overdue(now, grace):
                self.tracks[stream] = Track(max(value, track.target))
                self.resync(stream)

    # -- credentials that expire ------------------------------------------------

    async def _recheck_loop(self) -> None:
        """Ask again the credentials of every connection that is due (see
        ``ConnectionMixin.recheck_identity``): one timer for the process's
        connections, looking ``RECHECK_TICKS`` times per ``AUTH_RECHECK_SECONDS``."""
        while binding_settings.AUTH_RECHECK_SECONDS:
            await asyncio.sleep(binding_settings.AUTH_RECHECK_SECONDS / RECHECK_TICKS)
            now = time.monotonic()
            for consumer in list(self.members):
                due = getattr(consumer, "recheck_at", None)
                if due is None or due > now:
                    continue
                try:
                    if await consumer.recheck_identity():
                        self._forget_parked(consumer)
                except Exception:
                    logger.exception("Could not check a connection's credentials")
        self._recheck = None

    async def _rejoin_loop(self) -> None:
        while True:
            await asyncio.sleep(binding_settings.HUB_REJOIN_SECONDS)
            await self._rejoin()

    async def _rejoin(self) -> None:
        for group in list(self.groups):
            await self._layer_call("group_add", group)
