"""What a binding adds for live data: watching what a request reads, and the hooks
that decide who sees a change (see :doc:`live` in the docs).

Mixed into :class:`~channels_binding.bindings.GenericBinding`; every method here runs
with ``self.request`` set, in the worker thread of the request or of the hub.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import models
from django.db.models import QuerySet

from . import live
from .serializers import reads_only_the_object
from .settings import binding_settings
from .subscriptions import Subscription

#: Actions that watch what they read when auto-subscribe is on.
AUTO_SUBSCRIBE_ACTIONS = ("retrieve", "list", "search")
#: Actions whose ``query`` is a text search over ``search_fields``.
QUERY_ACTIONS = ("search", "subscribe", "unsubscribe")


class LiveMixin:
    def get_visibility_key(self) -> Hashable:
        """Watchers whose bindings return equal keys see the same rows, serialized
        the same way: a change is checked and serialized once per key.

        The default is one key for everybody served by the same serializer class,
        ``("serializer", <class>)``, when nothing the binding reads can depend on
        the user: ``get_queryset()`` and the serializer hooks are not overridden,
        and the serializer passes :func:`.serializers.reads_only_the_object`.
        Otherwise it is one key per user. Return a coarser key (a role, a
        tenant) to share the work among users who see the same rows the same way.
        """
        serializer_class = _serializer_for_everybody(self)
        if serializer_class is not None:
            return ("serializer", serializer_class)
        return ("user", getattr(self.request.user, "pk", None))

    def get_push_queryset(self) -> QuerySet:
        """Where pushes read the rows that ``get_queryset()`` showed each watcher
        may see. Defaults to ``queryset`` or the model's manager; override it if
        your serializer needs annotations that your ``get_queryset()`` adds."""
        return _generic().get_queryset(self)

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
        try:
            yield subscription
        except BaseException:
            if created:
                self.hub.index.remove(subscription)
            raise

    def get_watched_object(self, force: bool = False) -> models.Model:
        """``get_object()``, watched from before the read when the lookup is the
        primary key (from just after it otherwise)."""
        if self.lookup_field in ("pk", self.model._meta.pk.name):
            with self.watching(force, pk=self.get_lookup_value()) as subscription:
                instance = self.get_object()
        else:
            instance = self.get_object()
            with self.watching(force, pk=instance.pk) as subscription:
                pass
        if subscription is not None:
            subscription.saw([instance.pk])
        return instance

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
        live.announce(objects, pks)


#: The hooks whose overrides may make rows or fields depend on the user.
USER_HOOKS = (
    "get_queryset",
    "get_serializer_class",
    "get_serializer",
    "get_serializer_context",
)
_hooks_kept: dict[type, bool] = {}


def _serializer_for_everybody(binding: Any) -> type | None:
    """The binding's serializer class if what it shows cannot depend on the user
    (see :meth:`LiveMixin.get_visibility_key`), else ``None``. The class is part
    of the key: a binding that picks its serializer class per user some other way
    (a property, its ``__init__``) still never shares one user's frames."""
    cls = type(binding)
    kept = _hooks_kept.get(cls)
    if kept is None:
        generic = _generic()
        kept = _hooks_kept[cls] = all(
            getattr(cls, hook) is getattr(generic, hook) for hook in USER_HOOKS
        )
    if not kept:
        return None
    serializer_class = binding.get_serializer_class()
    return serializer_class if reads_only_the_object(serializer_class) else None


@functools.cache
def _generic() -> type:
    # The class that defines the default get_queryset(); imported late because it
    # mixes this module in.
    from .bindings import GenericBinding

    return GenericBinding
