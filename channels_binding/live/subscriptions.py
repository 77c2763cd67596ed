"""What each connection watches, indexed so a change finds its watchers quickly.

A subscription is to one object (``pk``) or to a collection query (``filters`` and
``query``), on one stream, with the hash of the request that made it. Each keeps the
primary keys it has shown its client (``seen``): a ``delete`` push is only ever sent
for an object the client has seen, so a watcher never learns even the id of a row it
could not read.

The index is shared by every connection of one event loop (see :mod:`.hub`). It is
changed from the event loop (disconnects) and from the database worker thread
(auto-subscriptions made while a request reads its rows), hence the lock.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from rest_framework.exceptions import Throttled

from . import limits


def pk_key(pk: Any) -> str:
    """One spelling for a primary key, whether it came as ``5`` or ``"5"``."""
    return str(pk)


def object_key(stream: str, hash_: str | None, pk: Any) -> tuple:
    """The :attr:`Subscription.key` of a subscription to the object ``pk``."""
    return (stream, hash_, "object", pk_key(pk))


@dataclass(eq=False)
class Subscription:
    consumer: Any
    stream: str
    hash: str | None
    pk: Any = None
    filters: dict | None = None
    query: str | None = None
    #: pk_key → pk of every row this subscription has shown its client.
    seen: dict[str, Any] = field(default_factory=dict)
    #: The subscriptions this one replaced, until its read is done: a read that
    #: fails puts them back (see :meth:`SubscriptionIndex.withdraw`).
    replaced: list = field(default_factory=list, repr=False)
    #: Made by a list or search rather than by ``subscribe``: a later list or
    #: search with the same hash replaces it (a search box watches its last query).
    replaceable: bool = False
    #: Reads of this subscription whose reply is not written yet. Pushes computed
    #: meanwhile are held back: their keys wait in ``held`` and are computed again
    #: once the reply is out, so a push is never older than the reply before it.
    reading: int = 0
    held: set[str] = field(default_factory=set)

    @property
    def is_object(self) -> bool:
        return self.pk is not None

    @property
    def key(self) -> tuple:
        """Equal for two requests that ask to watch the same thing."""
        if self.is_object:
            return object_key(self.stream, self.hash, self.pk)
        return (self.stream, self.hash, "collection", self.query_key)

    @cached_property
    def query_key(self) -> str:
        """The collection's filters and query, spelled canonically."""
        return json.dumps([self.filters or {}, self.query or ""], sort_keys=True)

    @cached_property
    def size(self) -> int:
        """Its weight before it shows any row (see :mod:`.limits`)."""
        return limits.size(self)

    @property
    def weight(self) -> int:
        """What it counts against ``MAX_SUBSCRIPTION_BYTES``."""
        return self.size + limits.SEEN_ROW_BYTES * len(self.seen)

    @cached_property
    def lookups(self) -> int:
        """What it counts against ``MAX_COLLECTION_LOOKUPS`` (see :mod:`.limits`)."""
        return limits.lookups(self)

    def event(self, action: str) -> str:
        base = f"{self.stream}.{action}"
        return f"{base}#{self.hash}" if self.hash is not None else base

    def saw(self, pks: list) -> None:
        for pk in pks:
            self.seen[pk_key(pk)] = pk

    def hold(self) -> None:
        """A read of this subscription starts (worker thread)."""
        with HOLD_LOCK:
            self.reading += 1

    def held_back(self, key: str) -> bool:
        """Whether a push of ``key`` must wait for a reply; if so it is kept."""
        with HOLD_LOCK:
            if self.reading:
                self.held.add(key)
                return True
            return False

    def unhold(self) -> set[str]:
        """A read's reply is written: the keys to compute again, once no read is
        left."""
        with HOLD_LOCK:
            self.reading -= 1
            if self.reading or not self.held:
                return set()
            held, self.held = self.held, set()
            return held


#: Guards ``reading`` and ``held`` of every subscription: pushes are computed in
#: the worker thread while replies are written on the event loop.
HOLD_LOCK = threading.Lock()


class SubscriptionIndex:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_consumer: dict[Any, dict[tuple, Subscription]] = {}
        self._objects: dict[str, dict[str, set[Subscription]]] = defaultdict(
            lambda: defaultdict(set)
        )
        self._collections: dict[str, set[Subscription]] = defaultdict(set)
        # Consumers already released: a request of theirs still running in the
        # worker thread must not subscribe them again.
        self._released: weakref.WeakSet = weakref.WeakSet()

    def add(
        self, subscription: Subscription, limit: int | None = None
    ) -> tuple[Subscription, bool]:
        """Add, or return the identical subscription the consumer already has.

        Returns ``(subscription, created)``. A replaceable collection subscription
        replaces the consumer's replaceable one with the same stream and hash. A
        consumer that already has ``limit`` subscriptions gets ``Throttled``, and
        one that would pass a limit of :mod:`.limits` gets ``Throttled`` or
        ``SubscriptionsTooLarge``; a refused subscription changes nothing.
        """
        with self._lock:
            if subscription.consumer in self._released:
                return subscription, False
            mine = self._by_consumer.get(subscription.consumer, {})
            existing = mine.get(subscription.key)
            if existing is not None:
                # An explicit subscribe keeps what a list happened to watch.
                existing.replaceable &= subscription.replaceable
                return existing, False
            replaced = []
            if subscription.replaceable:
                replaced = [
                    key
                    for key, old in mine.items()
                    if old.replaceable
                    and old.stream == subscription.stream
                    and old.hash == subscription.hash
                ]
            if limit is not None and len(mine) - len(replaced) >= limit:
                raise Throttled(
                    detail=f"Too many subscriptions ({limit}) on this connection: "
                    "unsubscribe from some first."
                )
            kept = [sub for key, sub in mine.items() if key not in replaced]
            limits.check_add(subscription.consumer, kept, subscription)
            mine = self._by_consumer.setdefault(subscription.consumer, mine)
            for key in replaced:
                old = mine.pop(key)
                self._unindex(old)
                old.replaced = []
                subscription.replaced.append(old)
            mine[subscription.key] = subscription
            self._index(subscription)
            return subscription, True

    def existing(self, consumer: Any, key: tuple) -> Subscription | None:
        """The subscription ``consumer`` has with ``key`` (see
        :attr:`Subscription.key`), or ``None``: for an object, what :meth:`add`
        of an identical one would return, without making one."""
        with self._lock:
            if consumer in self._released:
                return None
            mine = self._by_consumer.get(consumer)
            return None if mine is None else mine.get(key)

    def _index(self, subscription: Subscription) -> None:
        if subscription.is_object:
            by_pk = self._objects[subscription.stream]
            by_pk[pk_key(subscription.pk)].add(subscription)
        else:
            self._collections[subscription.stream].add(subscription)

    def show(self, subscription: Subscription, pks: list) -> None:
        """Record that a read showed the rows ``pks`` through ``subscription``,
        and end its replacing of older subscriptions (see :meth:`add`). Raises
        ``SubscriptionsTooLarge``, recording nothing, when the new rows would
        take the consumer past ``MAX_SUBSCRIPTION_BYTES``."""
        with self._lock:
            new = {}
            for pk in pks:
                key = pk_key(pk)
                if key not in subscription.seen:
                    new[key] = pk
            if new:
                mine = self._by_consumer.get(subscription.consumer, {})
                limits.check_rows(mine.values(), len(new))
            subscription.seen.update(new)
            subscription.replaced = []

    def withdraw(self, subscription: Subscription) -> None:
        """Undo :meth:`add` after its read failed: remove ``subscription`` and
        put back the subscriptions it replaced."""
        with self._lock:
            replaced, subscription.replaced = subscription.replaced, []
            mine = self._by_consumer.get(subscription.consumer)
            if mine is None or mine.get(subscription.key) is not subscription:
                return
            del mine[subscription.key]
            self._unindex(subscription)
            for old in replaced:
                if old.key not in mine:
                    mine[old.key] = old
                    self._index(old)
            if not mine:
                del self._by_consumer[subscription.consumer]

    def remove(self, subscription: Subscription) -> bool:
        with self._lock:
            mine = self._by_consumer.get(subscription.consumer, {})
            found = mine.pop(subscription.key, None)
            if found is None:
                return False
            self._unindex(found)
            if not mine:
                self._by_consumer.pop(subscription.consumer, None)
            return True

    def remove_stream(self, consumer: Any, stream: str) -> int:
        """Remove every subscription ``consumer`` has on ``stream``; return how many."""
        with self._lock:
            mine = self._by_consumer.get(consumer, {})
            gone = [key for key in mine if key[0] == stream]
            for key in gone:
                self._unindex(mine.pop(key))
            if not mine:
                self._by_consumer.pop(consumer, None)
            return len(gone)

    def remove_consumer(self, consumer: Any) -> None:
        with self._lock:
            self._released.add(consumer)
            for subscription in self._by_consumer.pop(consumer, {}).values():
                self._unindex(subscription)

    def _unindex(self, subscription: Subscription) -> None:
        stream = subscription.stream
        if subscription.is_object:
            by_pk = self._objects[stream]
            watchers = by_pk[pk_key(subscription.pk)]
            watchers.discard(subscription)
            if not watchers:
                del by_pk[pk_key(subscription.pk)]
            if not by_pk:
                del self._objects[stream]
        else:
            self._collections[stream].discard(subscription)
            if not self._collections[stream]:
                del self._collections[stream]

    def move(self, old: Any, new: Any) -> int:
        """Give ``old``'s subscriptions to ``new`` (a resumed connection)."""
        with self._lock:
            moved = self._by_consumer.pop(old, {})
            self._released.add(old)
            mine = self._by_consumer.setdefault(new, {})
            for key, subscription in moved.items():
                if key in mine:
                    self._unindex(subscription)
                    continue
                subscription.consumer = new
                mine[key] = subscription
            if not mine:
                del self._by_consumer[new]
            return len(moved)

    def of_stream(self, stream: str) -> tuple[list, list]:
        """``(object subscriptions, collection subscriptions)`` of a stream."""
        with self._lock:
            by_pk = self._objects.get(stream, {})
            objects = [sub for subs in by_pk.values() for sub in subs]
            return objects, list(self._collections.get(stream, ()))

    def for_consumer(self, consumer: Any) -> list[Subscription]:
        with self._lock:
            return list(self._by_consumer.get(consumer, {}).values())

    def watchers(self, stream: str, keys: set[str]) -> tuple[list, list]:
        """``(object subscriptions on those pks, collection subscriptions)``."""
        with self._lock:
            by_pk = self._objects.get(stream, {})
            objects = [sub for key in keys for sub in by_pk.get(key, ())]
            return objects, list(self._collections.get(stream, ()))

    def consumers(self) -> int:
        with self._lock:
            return len(self._by_consumer)
