"""The built-in actions, one mixin each, in the manner of DRF's ``mixins.py``.

Each action is a plain method ``action(self, request)`` that returns the reply's
``data``; it knows nothing of websockets or HTTP. They run in a worker thread, so
they use the ORM directly. Writes run inside one transaction.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import router, transaction
from django.db.models import Model

from .exceptions import ActionNotAllowed
from .live.subscriptions import Subscription


class RetrieveMixin:
    def retrieve(self, request) -> Any:
        """The object; over a websocket it is watched from then on."""
        return self.get_serializer(self.get_watched_object()).data


class ListMixin:
    def list(self, request) -> dict[str, Any]:
        """A page of the collection; over a websocket the collection query (its
        filters, not its page) is watched from then on."""
        queryset = self.filter_queryset(self.get_queryset())
        with self.watching(**self.collection_target()) as subscription:
            page = self.paginate_queryset(self.optimize_queryset(queryset))
            self.show_rows(subscription, self.page_objects)
        return page


class SearchMixin:
    def search(self, request) -> dict[str, Any]:
        """``list`` plus ``query``: a text search over ``search_fields``."""
        return ListMixin.list(self, request)


class SubscribeMixin:
    """Watch an object (``{"id": pk}``, or the hash as the key) or a collection
    query (``{"filters", "query"}``) without reading it."""

    def subscribe(self, request) -> dict[str, bool]:
        """Watch the object or the collection, checked as a ``retrieve`` or a
        ``search`` would be; a 405 over HTTP."""
        self.require_live()
        if self.subscribes_to_object():
            self.get_watched_object(force=True)
        else:
            # Built for its validation: a bad filter or query is a 400, as in a
            # search, so no subscription can fail when a change is checked.
            self.filter_queryset(self.get_queryset())
            self.watch(**self.collection_target())
        return {"subscribed": True}

    def unsubscribe(self, request) -> dict[str, bool]:
        """Stop one subscription (addressed as it was made), or every subscription
        to this stream with ``{"all": true}``."""
        self.require_live()
        index, connection = self.hub.index, request.connection
        if request.data.get("all") is True:
            index.remove_stream(connection, self.stream)
        else:
            if not self.subscribes_to_object():
                target = self.collection_target()
            elif self.lookup_field in ("pk", self.model._meta.pk.name):
                target = {"pk": self.get_lookup_value()}
            else:
                target = {"pk": self.get_object().pk}
            index.remove(Subscription(connection, self.stream, request.hash, **target))
        return {"subscribed": False}

    def require_live(self) -> None:
        if self.hub is None:
            raise ActionNotAllowed(
                "Subscriptions need a websocket connection; over HTTP, poll with "
                "retrieve, list or search."
            )

    def subscribes_to_object(self) -> bool:
        """``id`` given, or no ``filters``/``query`` and a hash that is a valid
        primary key for the model."""
        data = self.request.data
        if "id" in data:
            return True
        if "filters" in data or "query" in data or not self.request.hash:
            return False
        try:
            self.model._meta.pk.to_python(self.request.hash)
        except (DjangoValidationError, ValueError, TypeError):
            return False
        return True


def _atomic(binding):
    return transaction.atomic(using=router.db_for_write(binding.model))


class CreateMixin:
    def create(self, request) -> Any:
        """Validate ``data`` with the serializer, save a new object with
        :meth:`perform_create` and return it serialized."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with _atomic(self):
            self.perform_create(serializer)
        return serializer.data


class UpdateMixin:
    def update(self, request) -> Any:
        """A partial update: fields left out keep their values. Over HTTP, ``PUT``
        is a full update (``request.method == "PUT"``): required fields are
        required."""
        partial = request.method != "PUT"
        with _atomic(self):
            instance = self.get_object()
            serializer = self.get_serializer(
                instance, data=request.data, partial=partial
            )
            serializer.is_valid(raise_exception=True)
            self.perform_update(serializer)
        return serializer.data


class SaveMixin:
    """Update the object ``id`` (or the hash) names, or create one if none is found.

    Permission classes see ``PUT`` for an update and ``POST`` for a create.
    """

    _save_instance: Model | None = None

    def get_method(self) -> str:
        method = super().get_method()
        if self.action != "save":
            return method
        self._save_instance = self._find_save_instance()
        return "PUT" if self._save_instance is not None else "POST"

    def _find_save_instance(self) -> Model | None:
        data = self.request.data
        if "id" not in data and not self.request.hash:
            return None
        value = self.get_lookup_value()
        try:
            return self.get_queryset().get(**{self.lookup_field: value})
        except (ObjectDoesNotExist, DjangoValidationError, ValueError, TypeError):
            # No such object this user may see, or a malformed key: create.
            return None

    def save(self, request) -> dict[str, Any]:
        """Update (partially) or create; returns ``{"success": True, "id": pk}``."""
        instance = self._save_instance
        if instance is not None:
            self.check_object_permissions(instance)
        serializer = self.get_serializer(
            instance, data=request.data, partial=instance is not None
        )
        serializer.is_valid(raise_exception=True)
        with _atomic(self):
            if instance is None:
                self.perform_create(serializer)
            else:
                self.perform_update(serializer)
        return {"success": True, "id": serializer.instance.pk}


class DeleteMixin:
    def delete(self, request) -> dict[str, Any]:
        """Delete the object with :meth:`perform_destroy`; returns
        ``{"success": True, "id": pk}``."""
        with _atomic(self):
            instance = self.get_object()
            pk = instance.pk
            self.perform_destroy(instance)
        return {"success": True, "id": pk}
