"""What a binding adds for live data: watching what a request reads (see
:doc:`live` in the docs). The hooks that decide who sees a change
(``get_visibility_key``, ``get_push_queryset``) are the binding's own, in
:mod:`channels_binding.bindings`.

Mixed into :class:`~channels_binding.bindings.GenericBinding`; every method here runs
with ``self.request`` set, in the worker thread of the request or of the hub.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import models

from ..settings import binding_settings
from . import capture
from .subscriptions import Subscription, object_key

#: Actions that watch what they read when auto-subscribe is on.
AUTO_SUBSCRIBE_ACTIONS = ("retrieve", "list", "search")
#: Actions whose ``query`` is a text search over ``search_fields``.
QUERY_ACTIONS = ("search", "subscribe", "unsubscribe")


class LiveMixin:
    @property
    def hub(self) -> Any:
        """The connection's live-data hub; ``None`` over HTTP."""
        return getattr(self.request.connection, "hub", None)

    def should_auto_subscribe(self) -> bool:
        if self.hub is None or self.model is None:
            return False
        if self.auto_subscribe is not None:
            return self.auto_subscribe
        return binding_settings.AUTO_SUBSCRIBE

    def needs_stream(self) -> bool:
        """Whether the connection must listen to this stream before the action."""
        if self.model is None or self.hub is None:
            return False
        if self.action == "subscribe":
            return True
        return self.action in AUTO_SUBSCRIBE_ACTIONS and self.should_auto_subscribe()

    def watch(self, **target: Any) -> tuple[Subscription, bool]:
        """Subscribe the connection to an object (``pk=``) or a collection
        (``filters=``, ``query=``) with the request's hash."""
        pk = target.get("pk")
        if pk is not None and len(target) == 1:  # most often watched already
            key = object_key(self.stream, self.request.hash, pk)
            existing = self.hub.index.existing(self.request.connection, key)
            if existing is not None:
                return existing, False
        subscription = Subscription(
            self.request.connection, self.stream, self.request.hash, **target
        )
        return self.hub.add(subscription)

    @contextmanager
    def watching(self, force: bool = False, **target: Any) -> Iterator:
        """Watch ``target`` from before the read, so no change committed after the
        read is missed; undo the watch if the read fails. Yields the subscription,
        or ``None`` when auto-subscribe is off (and ``force`` is not set)."""
        if not (force or self.should_auto_subscribe()):
            yield None
            return
        subscription, created = self.watch(**target)
        # Pushes wait for this read's reply (the transport releases the hold).
        subscription.hold()
        self.request.holds.append(subscription)
        try:
            yield subscription
        except BaseException:
            if created:
                self.hub.index.withdraw(subscription)
            raise

    def get_watched_object(self, force: bool = False) -> models.Model:
        """``get_object()``, watched from before the read when the lookup is the
        primary key (from just after it otherwise)."""
        if self.lookup_field in ("pk", self.model._meta.pk.name):
            with self.watching(force, pk=self.get_lookup_value()) as subscription:
                instance = self.get_object()
                self.show_rows(subscription, [instance])
        else:
            instance = self.get_object()
            with self.watching(force, pk=instance.pk) as subscription:
                self.show_rows(subscription, [instance])
        return instance

    def show_rows(self, subscription: Subscription | None, rows: list) -> None:
        """Record the rows a read shows through ``subscription`` (from inside
        :meth:`watching`): a read whose rows would take the connection past
        ``MAX_SUBSCRIPTION_BYTES`` is refused, and watches nothing."""
        if subscription is not None:
            self.hub.index.show(subscription, [row.pk for row in rows])

    def collection_target(self) -> dict[str, Any]:
        data = self.request.data
        query = data.get("query") if self.action in QUERY_ACTIONS else None
        return {
            "filters": data.get("filters") or {},
            "query": query or None,
            # What a list or search watches is replaced by the next one with the
            # same hash; what ``subscribe`` watches stays until ``unsubscribe``.
            "replaceable": self.action in AUTO_SUBSCRIBE_ACTIONS,
        }

    @classmethod
    def announce(cls, objects: Any = None, pks: Any = None) -> None:
        """Push changes that sent no signal (``QuerySet.update()``,
        ``bulk_create()``, raw SQL): ``ProductBinding.announce(queryset)``, or
        ``ProductBinding.announce(pks=[1, 2])``. See :func:`.live.announce`."""
        if objects is None:
            objects = cls.model
        capture.announce(objects, pks)
