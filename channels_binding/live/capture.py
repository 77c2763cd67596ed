"""Change capture: model signals → one message per stream after the commit.

Saves, deletes and many-to-many changes of every bound model are collected per
transaction and sent when it commits, as one ``group_send`` per stream carrying the
primary keys that changed. Nothing is sent for a rolled-back transaction, and several
saves of one object in one transaction are sent once.

The message carries only keys, never data: each receiving process reads the rows
back (see :mod:`.pushes`), so what is pushed is always the committed state, read
with each watcher's own permissions.

``QuerySet.update()`` and ``bulk_create()`` send no signals; call :func:`announce`
after them.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
from collections.abc import Iterable
from typing import Any

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import DEFAULT_DB_ALIAS, router, transaction
from django.db.models import Model, QuerySet
from django.db.models.signals import m2m_changed, post_delete, post_save

from ..registry import registry
from ..settings import binding_settings
from .groups import give_hubs_capacity, stream_group
from .sequence import sequencer_for

logger = logging.getLogger("channels_binding")

CHANGE_MESSAGE = "binding.change"


def _wire_pk(pk: Any) -> Any:
    # Channel layers carry msgpack: ints pass as they are, anything else as text.
    return pk if isinstance(pk, int) and not isinstance(pk, bool) else str(pk)


class _Batch:
    """The changes of one transaction, sent once it commits."""

    def __init__(self) -> None:
        self.changes: dict[str, dict[str, Any]] = {}
        self.sent = False

    def add(self, streams: Iterable[str], pks: Iterable[Any]) -> None:
        pks = [_wire_pk(pk) for pk in pks if pk is not None]
        for stream in streams:
            keys = self.changes.setdefault(stream, {})
            for pk in pks:
                keys[str(pk)] = pk

    def send(self) -> None:
        self.sent = True
        layer = get_channel_layer()
        if layer is None or not self.changes:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            # Called from async code (``announce()`` in a coroutine): send from
            # this loop rather than block it.
            task = loop.create_task(_group_send_all(layer, self.changes))
            _sending.add(task)
            task.add_done_callback(_sent)
            return
        try:
            if _has_outer_loop() or isinstance(layer, InMemoryChannelLayer):
                async_to_sync(_group_send_all)(layer, self.changes)
            else:
                _sender.post(layer, self.changes)
        except Exception:
            # A push is lost, the write is not: the transaction has committed.
            logger.exception("Could not send change notifications")


_sending: set = set()


def _has_outer_loop() -> bool:
    """Whether this thread runs for an event loop (a ``sync_to_async`` call):
    ``async_to_sync`` then sends from that loop."""
    return getattr(SyncToAsync.threadlocal, "main_event_loop", None) is not None


class _SenderLoop:
    """An event loop of its own, in a daemon thread, for sends from threads that
    have none (a management command, a worker, a script, a WSGI process).

    ``async_to_sync`` would make a new loop per commit there, and channels_redis
    a new connection pool (so a new Redis connection) per loop: a few
    milliseconds per commit. This loop lives as long as the process, so its
    connections do too.

    A commit does not wait for its message: its changes join the unsent ones
    and the loop sends everything waiting, one message per stream, as soon as
    its previous send is done. Commits that land during a send share the next
    message, so a process committing faster than Redis answers sends fewer,
    larger messages instead of falling behind. When the process exits normally
    what is waiting is sent first (for up to ``FLUSH_SECONDS``)."""

    #: How long an exiting process waits for its last changes to be sent.
    FLUSH_SECONDS = 5.0
    #: Wait before trying again when the layer failed.
    RETRY_SECONDS = 1.0

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pid: int | None = None
        self.lock = threading.Lock()
        self.sending = False  # a drain is scheduled or running (under _unsent_lock)
        self.idle = threading.Event()

    def _loop(self) -> asyncio.AbstractEventLoop:
        with self.lock:
            if self.loop is None or self.pid != os.getpid():  # none, or forked
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="channels-binding-sender", daemon=True
                )
                thread.start()
                if self.pid is None:
                    atexit.register(self.flush)
                self.loop, self.pid, self.sending = loop, os.getpid(), False
            return self.loop

    def post(self, layer, changes: dict[str, dict[str, Any]]) -> None:
        """Send ``changes`` soon, from the loop's thread."""
        loop = self._loop()
        with _unsent_lock:
            _merge_unsent(changes)
            if self.sending:
                return  # the running drain takes them
            self.sending = True
            self.idle.clear()
        loop.call_soon_threadsafe(loop.create_task, self._drain(layer))

    async def _drain(self, layer) -> None:
        while True:
            with _unsent_lock:
                if not _unsent:
                    self.sending = False
                    self.idle.set()
                    return
            try:
                await _group_send_all(layer, {})
            except Exception:
                # Kept as unsent by _group_send_all: tried again after a pause.
                logger.exception("Could not send change notifications")
                await asyncio.sleep(self.RETRY_SECONDS)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until nothing is waiting to be sent; False if it still is."""
        if self.loop is None or self.pid != os.getpid():
            return not _unsent
        return self.idle.wait(self.FLUSH_SECONDS if timeout is None else timeout)


_sender = _SenderLoop()


def _sent(task) -> None:
    _sending.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("Could not send change notifications", exc_info=task.exception())


async def _group_send_all(layer, changes: dict[str, dict[str, Any]]) -> None:
    """Send one message per stream, with the changes earlier sends could not."""
    changes = _take_unsent(changes)
    give_hubs_capacity(layer, binding_settings.HUB_CAPACITY)
    sequencer = sequencer_for(layer)
    streams = list(changes)
    try:
        while streams:
            stream = streams[0]
            pks = list(changes[stream].values())
            message = {"type": CHANGE_MESSAGE, "stream": stream, "pks": pks}
            # Numbered first: a message that took a number and was then lost leaves
            # a hole that hubs see (see sequence.py).
            seq = await sequencer.next(stream)
            if seq is not None:
                message["seq"] = seq
            await layer.group_send(stream_group(stream), message)
            streams.pop(0)
    except BaseException:
        # The layer is unreachable: the next send from this process (or its hub,
        # once the layer is back) sends these too.
        _keep_unsent({stream: changes[stream] for stream in streams})
        raise


#: Changes whose message could not be sent, by stream, waiting for the layer.
_unsent: dict[str, dict[str, Any]] = {}
_unsent_lock = threading.Lock()
#: Keys kept per stream at most; past it the oldest are forgotten (and logged).
MAX_UNSENT_KEYS = 10_000


def _keep_unsent(changes: dict[str, dict[str, Any]]) -> None:
    with _unsent_lock:
        _merge_unsent(changes)


def _merge_unsent(changes: dict[str, dict[str, Any]]) -> None:
    """Add to the unsent changes; the caller holds ``_unsent_lock``."""
    for stream, keys in changes.items():
        kept = _unsent.setdefault(stream, {})
        kept.update(keys)
        while len(kept) > MAX_UNSENT_KEYS:
            kept.pop(next(iter(kept)))
            logger.error("Forgot an unsent change of %s: too many waiting", stream)


def _take_unsent(changes: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    if not _unsent:
        return changes
    with _unsent_lock:
        waiting = dict(_unsent)
        _unsent.clear()
    for stream, keys in changes.items():
        waiting[stream] = {**waiting.get(stream, {}), **keys}
    return waiting


async def send_unsent(layer) -> None:
    """Send what earlier sends could not (called by the hub once the layer is back)."""
    if _unsent:
        await _group_send_all(layer, {})


_pending = threading.local()


def _batch_for(using: str) -> _Batch:
    """The batch of the transaction in progress on ``using``, made on first use."""
    batches = getattr(_pending, "batches", None)
    if batches is None:
        batches = _pending.batches = {}
    batch = batches.get(using)
    connection = transaction.get_connection(using)
    if batch is not None and not batch.sent and connection.in_atomic_block:
        # Still ours only if its callback survived (a rollback discards it).
        if any(entry[1] == batch.send for entry in connection.run_on_commit):
            return batch
    batch = batches[using] = _Batch()
    if connection.in_atomic_block:
        transaction.on_commit(batch.send, using=using)
    return batch


def changed(model: type[Model], pks: Iterable[Any], using: str | None = None) -> None:
    """Record that these rows of ``model`` changed; watchers hear after the commit."""
    streams = registry.streams_for(model)
    if not streams:
        return
    using = using or router.db_for_write(model)
    batch = _batch_for(using)
    batch.add(streams, pks)
    if not transaction.get_connection(using).in_atomic_block:
        batch.send()


def announce(
    objects: type[Model] | QuerySet | Model | Iterable[Model],
    pks: Iterable[Any] | None = None,
    using: str | None = None,
) -> None:
    """Tell watchers about changes that sent no signal.

    Call it after ``QuerySet.update()``, ``bulk_create()``, raw SQL or changes to
    related rows that a serializer shows::

        Product.objects.filter(category=c).update(in_stock=False)
        announce(Product.objects.filter(category=c))   # a queryset: its pks
        announce(Product, [1, 2, 3])                     # a model and keys
        announce(new_products)                           # instances

    Inside a transaction the announcement waits for the commit, like a save.
    """
    if isinstance(objects, type) and issubclass(objects, Model):
        model, keys = objects, list(pks or ())
    elif isinstance(objects, QuerySet):
        model, keys = objects.model, list(objects.values_list("pk", flat=True))
        using = using or objects.db
    elif isinstance(objects, Model):
        model, keys = type(objects), [objects.pk]
    else:
        items = list(objects)
        if not items:
            return
        model, keys = type(items[0]), [item.pk for item in items]
    changed(model, keys, using)


def _on_save(sender, instance, using=DEFAULT_DB_ALIAS, raw=False, **kwargs) -> None:
    if not raw:
        changed(sender, [instance.pk], using)


def _on_delete(sender, instance, using=DEFAULT_DB_ALIAS, **kwargs) -> None:
    changed(sender, [instance.pk], using)


def _on_m2m(sender, instance, action, reverse, model, pk_set, using, **kwargs) -> None:
    if action not in ("post_add", "post_remove", "post_clear", "pre_clear"):
        return
    if action == "pre_clear":
        # After the clear the other side's keys are gone; remember them now.
        if registry.streams_for(model):
            related = getattr(instance, _m2m_accessor(sender, instance, reverse))
            changed(model, list(related.values_list("pk", flat=True)), using)
        return
    changed(type(instance), [instance.pk], using)
    if pk_set:
        changed(model, pk_set, using)


def _m2m_accessor(through, instance, reverse) -> str:
    """The attribute of ``instance`` that reads the relation ``through`` serves."""
    for field in type(instance)._meta.get_fields():
        if not field.many_to_many:
            continue
        if field.auto_created and getattr(field, "through", None) is through:
            return field.get_accessor_name()  # the reverse side
        if getattr(field.remote_field, "through", None) is through:
            return field.name
    raise LookupError(through)


def connect_signals() -> None:
    post_save.connect(_on_save, dispatch_uid="channels_binding.save")
    post_delete.connect(_on_delete, dispatch_uid="channels_binding.delete")
    m2m_changed.connect(_on_m2m, dispatch_uid="channels_binding.m2m")
