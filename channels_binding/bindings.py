"""Bindings: one class per model that answers ``<stream>.<action>`` events.

A binding is to a stream what a DRF view set is to a URL prefix. Each request gets a
fresh instance carrying ``self.request``; behaviour is split into small hooks
(``get_queryset``, ``get_serializer``, ``get_object``, ``perform_create``, ...) that
you override, and policies are class attributes whose defaults come from the
``CHANNELS_BINDING`` setting.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Hashable
from typing import Any, ClassVar

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.db.models import QuerySet
from django.http import Http404
from rest_framework.serializers import BaseSerializer

from . import filters, mixins, pagination
from .events.batching import Batcher
from .events.request import BindingRequest
from .exceptions import (
    ActionNotAllowed,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    UnknownEvent,
    ValidationError,
)
from .live.watching import QUERY_ACTIONS, LiveMixin
from .registry import registry
from .serializers import (
    model_serializer_class,
    read_many_serializer,
    read_serializer,
    reads_only_the_object,
    related_lookups,
)
from .settings import binding_settings

BUILTIN_ACTIONS = (
    "retrieve",
    "list",
    "search",
    "create",
    "update",
    "save",
    "delete",
    "subscribe",
    "unsubscribe",
)


def bind(
    name: str,
    *,
    method: str = "POST",
    permission_classes: list | tuple | None = None,
) -> Callable:
    """Expose a binding method as the custom event ``<stream>.<name>``.

    The method is called as ``method(self, request)`` and whatever it returns is the
    reply's ``data``. It may be ``async def`` (run on the event loop) or plain
    ``def`` (run in a worker thread, so it may use the ORM). ``method`` is what DRF
    permission classes see: the default ``"POST"`` counts as a write, so anonymous
    users are refused by the default permissions; pass ``"GET"`` for a read.
    """
    if not name or "." in name or "#" in name or name.startswith("_"):
        raise ValueError(
            f"@bind({name!r}): an event name must be non-empty, must not start with "
            "'_' and must not contain '.' or '#'."
        )

    def decorator(func: Callable) -> Callable:
        func.binding_event = name
        func.binding_method = method.upper()
        func.binding_permission_classes = permission_classes
        return func

    return decorator


#: The default handlers of the actions whose pages may be shared (see
#: ``GenericBinding.can_share_page``).
PAGE_HANDLERS = {"list": mixins.ListMixin.list, "search": mixins.SearchMixin.search}


class GenericBinding(LiveMixin):
    """Everything a binding needs except the actions (see :mod:`.mixins`)."""

    #: Set to ``True`` on a base class that must not be registered itself.
    abstract: ClassVar[bool] = True

    #: The model served. Optional with ``queryset`` (its model is taken), and for a
    #: binding with custom events only.
    model: ClassVar[type[models.Model] | None] = None
    #: The objects served, ``model._default_manager.all()`` by default; each
    #: request works on a fresh copy. Override :meth:`get_queryset` for anything
    #: that depends on the request.
    queryset: ClassVar[QuerySet | None] = None
    #: The stream name, ``"<app_label>.<ModelName>"`` by default. Required for a
    #: binding with no model.
    stream: ClassVar[str] = ""
    #: The DRF serializer; without it, a ``ModelSerializer`` is built from
    #: ``fields``, ``exclude`` and ``read_only_fields``.
    serializer_class: ClassVar[type[BaseSerializer] | None] = None
    #: The fields of the built serializer; takes precedence over ``exclude``.
    fields: ClassVar[list[str] | tuple[str, ...] | None] = None
    #: The fields the built serializer leaves out, in place of the
    #: ``DEFAULT_FIELDS_EXCLUDE`` setting.
    exclude: ClassVar[list[str] | tuple[str, ...] | None] = None
    #: Fields of the built serializer that clients may read but not write.
    read_only_fields: ClassVar[list[str] | tuple[str, ...] | None] = None
    #: DRF permission classes for every event; ``DEFAULT_PERMISSION_CLASSES``
    #: when ``None``.
    permission_classes: ClassVar[list | tuple | None] = None
    #: Action or custom event name → permission classes, in place of
    #: ``permission_classes`` for that event.
    permission_classes_by_action: ClassVar[dict[str, list | tuple]] = {}
    #: The fields ``search`` matches ``query`` against (``^name``: at the start,
    #: ``=name``: the whole field).
    search_fields: ClassVar[list[str] | tuple[str, ...]] = ()
    #: The filters clients may use: field names (exact match), or a dict of field
    #: name → lookups.
    filter_fields: ClassVar[list[str] | tuple[str, ...] | dict] = ()
    #: A django-filter ``FilterSet`` in place of ``filter_fields``.
    filterset_class: ClassVar[type | None] = None
    #: The fields clients may order by (``-`` for descending).
    ordering_fields: ClassVar[list[str] | tuple[str, ...]] = ()
    #: The ordering when the client asks none; the primary key always comes last.
    ordering: ClassVar[list[str] | tuple[str, ...] | None] = None
    #: Relations ``list`` and ``search`` join; read off the serializer when
    #: ``None``.
    select_related: ClassVar[list[str] | tuple[str, ...] | None] = None
    #: Relations ``list`` and ``search`` prefetch; read off the serializer when
    #: ``None``.
    prefetch_related: ClassVar[list[str] | tuple[str, ...] | None] = None
    #: Rows per page without a ``limit``; ``DEFAULT_PAGE_SIZE`` when ``None``.
    page_size: ClassVar[int | None] = None
    #: The largest ``limit`` a client gets; ``MAX_PAGE_SIZE`` when ``None``.
    max_page_size: ClassVar[int | None] = None
    #: Whether a websocket ``retrieve``, ``list`` or ``search`` watches what it
    #: read; the ``AUTO_SUBSCRIBE`` setting when ``None``.
    auto_subscribe: ClassVar[bool | None] = None
    #: The model field that ``id`` (or the hash) is matched against.
    lookup_field: ClassVar[str] = "pk"
    #: The built-in actions this binding answers; the others answer 405.
    actions: ClassVar[tuple[str, ...]] = BUILTIN_ACTIONS

    #: Event name (without stream) → method name; built when the class is made.
    events: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.model is None and cls.queryset is not None:
            cls.model = cls.queryset.model
        cls.events = cls._collect_events()
        if cls.__dict__.get("abstract", False):
            return
        stream = cls.__dict__.get("stream") or ""
        if not stream and cls.model is not None:
            stream = f"{cls.model._meta.app_label}.{cls.model.__name__}"
        if not stream:
            raise ImproperlyConfigured(
                f"{cls.__module__}.{cls.__qualname__} has neither a `model` nor a "
                '`stream`. Set `model = YourModel`, or `stream = "app.name"` for a '
                "binding with custom events only."
            )
        if "#" in stream or stream.startswith("."):
            raise ImproperlyConfigured(f"Invalid stream name {stream!r}.")
        cls.stream = stream
        unknown = set(cls.actions) - set(BUILTIN_ACTIONS)
        if unknown:
            raise ImproperlyConfigured(
                f"{cls.__qualname__}.actions names unknown actions {sorted(unknown)}; "
                f"choose among {', '.join(BUILTIN_ACTIONS)}."
            )
        registry.register(cls)

    @classmethod
    def _collect_events(cls) -> dict[str, str]:
        events = {}
        if cls.model is not None:
            events = {a: a for a in cls.actions if hasattr(cls, a)}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                name = getattr(value, "binding_event", None)
                if name is not None:
                    events[name] = attr
        return events

    # -- request lifecycle -------------------------------------------------------

    def __init__(self, request: BindingRequest) -> None:
        self.request = request
        self.action = request.action
        #: The method answering the event; set by :meth:`for_request`. Bindings
        #: made for other purposes (checking what a watcher may see) have none.
        self.handler: Callable | None = None

    @classmethod
    def for_request(cls, request: BindingRequest) -> GenericBinding:
        """The binding instance that answers ``request``; raises for unknown events."""
        binding = registry.get(request.stream)(request)
        binding.resolve_handler()
        return binding

    def resolve_handler(self) -> None:
        handler_name = self.events.get(self.action)
        if handler_name is None:
            if self.action in BUILTIN_ACTIONS:
                raise ActionNotAllowed(
                    f"{self.stream!r} does not allow {self.action!r}."
                )
            raise UnknownEvent(f"Unknown event {self.action!r} on {self.stream!r}.")
        self.handler = getattr(self, handler_name)
        method = getattr(self.handler, "binding_method", None)
        if method:
            self.request.method = method

    def run(self) -> Any:
        """Answer the request synchronously (for sync transports and worker threads)."""
        self.initial()
        return self.run_handler()

    def run_handler(self) -> Any:
        """Call the handler, once :meth:`initial` has admitted the request."""
        if inspect.iscoroutinefunction(self.handler):
            return async_to_sync(self.handler)(self.request)
        return self.handler(self.request)

    async def arun(self) -> Any:
        """Answer the request from the event loop.

        Built-in actions and plain ``def`` handlers run in a worker thread,
        permission checks included, in one hop shared with the other requests
        waiting for the database thread at that moment (see :mod:`.batching`); an
        ``async def`` handler runs on the loop after the permission checks.
        """
        if inspect.iscoroutinefunction(self.handler):
            await database_sync_to_async(self.initial)()
            return await self.handler(self.request)
        return await Batcher.current().run(self)

    def initial(self) -> None:
        """Runs before the handler: resolve the HTTP-like method, check permissions."""
        self.request.method = self.get_method()
        self.check_permissions()

    def get_method(self) -> str:
        """The HTTP method DRF permission classes see for this request."""
        return self.request.method

    # -- permissions -------------------------------------------------------------

    def get_permissions(self) -> list:
        """Instances of the permission classes that apply to this action.

        In order of precedence: ``@bind(..., permission_classes=...)``,
        ``permission_classes_by_action[action]``, ``permission_classes``, then the
        ``DEFAULT_PERMISSION_CLASSES`` setting.
        """
        classes = getattr(self.handler, "binding_permission_classes", None)
        if classes is None:
            classes = self.permission_classes_by_action.get(self.action)
        if classes is None:
            classes = self.permission_classes
        if classes is None:
            classes = binding_settings.DEFAULT_PERMISSION_CLASSES
        return [permission() for permission in classes]

    def check_permissions(self) -> None:
        """Raise 401 or 403 unless every permission class grants
        ``has_permission``."""
        for permission in self.get_permissions():
            if not permission.has_permission(self.request, self):
                self.permission_denied(permission)

    def check_object_permissions(self, obj: Any) -> None:
        """Raise 401 or 403 unless every permission class grants
        ``has_object_permission`` on ``obj``."""
        for permission in self.get_permissions():
            if not permission.has_object_permission(self.request, self, obj):
                self.permission_denied(permission)

    def permission_denied(self, permission: Any) -> None:
        message = getattr(permission, "message", None)
        code = getattr(permission, "code", None)
        user = self.request.user
        if user is None or not user.is_authenticated:
            raise NotAuthenticated(message, code)
        raise PermissionDenied(message, code)

    # -- data --------------------------------------------------------------------

    def get_queryset(self) -> QuerySet:
        """The objects this request may see. Override to filter by
        ``self.request.user``; every read, write and push goes through it."""
        if self.queryset is not None:
            return self.queryset.all()
        if self.model is None:
            raise ImproperlyConfigured(
                f"{type(self).__qualname__} should either set `model` or `queryset`, "
                "or override `get_queryset()`."
            )
        return self.model._default_manager.all()

    def get_serializer_class(self) -> type[BaseSerializer]:
        """``serializer_class``, or a ``ModelSerializer`` built for ``model`` from
        ``fields``, ``exclude`` and ``read_only_fields``. Override it to choose
        per action (``self.action``) or per user."""
        if self.serializer_class is not None:
            return self.serializer_class
        if self.model is None:
            raise ImproperlyConfigured(
                f"{type(self).__qualname__} should either set `serializer_class`, "
                "`model`, or override `get_serializer_class()`."
            )
        return model_serializer_class(
            self.model,
            _tuple(self.fields),
            _tuple(self.exclude),
            _tuple(self.read_only_fields),
            tuple(binding_settings.DEFAULT_FIELDS_EXCLUDE),
        )

    def get_serializer_context(self) -> dict[str, Any]:
        """``{"request": self.request, "view": self, "binding": self}``: serializer
        code that reads ``self.context["request"].user`` gets the connection's
        user."""
        return {"request": self.request, "view": self, "binding": self}

    def get_serializer(self, *args: Any, **kwargs: Any) -> BaseSerializer:
        """An instance of :meth:`get_serializer_class` with the context of
        :meth:`get_serializer_context`. Reading one object
        (``get_serializer(obj)``) reuses fields built once per class where the
        serializer allows it (see the bindings guide)."""
        kwargs.setdefault("context", self.get_serializer_context())
        serializer_class = self.get_serializer_class()
        if len(args) == 1 and len(kwargs) == 1:
            # Reading one object: its fields need not be built again.
            return read_serializer(serializer_class, args[0], kwargs["context"])
        if len(args) == 1 and kwargs.keys() == {"context", "many"} and kwargs["many"]:
            # Reading a page: nor those of the page's one child serializer.
            return read_many_serializer(serializer_class, args[0], kwargs["context"])
        return serializer_class(*args, **kwargs)

    def get_lookup_value(self) -> Any:
        """The value matched against ``lookup_field``: ``data["id"]``, else the
        event's hash. A 400 when there is neither, or when it is not a string or
        an integer."""
        data = self.request.data
        if "id" in data:
            value = data["id"]
        elif self.request.hash:
            value = self.request.hash
        else:
            raise ValidationError({"id": ["This field is required."]})
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValidationError({"id": ["Must be a string or an integer."]})
        return value

    def get_object(self) -> models.Model:
        """The object named by the request, if this request may see it."""
        obj = None
        if self.shared_objects is not None:
            obj = self.shared_objects.get(self.shared_lookup())
        if obj is None:  # not read with others, or not found among them
            queryset = self.get_queryset()
            try:
                obj = queryset.get(**{self.lookup_field: self.get_lookup_value()})
            except (
                queryset.model.DoesNotExist,
                # A malformed key (a UUID given "abc") is a not-found, not a 500.
                DjangoValidationError,
                ValueError,
                TypeError,
                Http404,
            ):
                raise NotFound() from None
        self.check_object_permissions(obj)
        return obj

    #: ``{primary key: object}``, this request's object read with other
    #: requests' by :func:`.batching.share_reads`, for :meth:`get_object`.
    shared_objects: dict[Any, models.Model] | None = None

    def can_share_reads(self) -> bool:
        r"""Whether this request's object may be read in one query with other
        requests' (see :mod:`.batching`): a ``retrieve`` by primary key sending
        nothing but the key, answered by the default ``run``, ``initial``,
        ``retrieve`` and ``get_object``, of a binding whose rows are the same for
        everybody (``get_queryset`` not overridden) or that says who sees the same
        rows (``get_visibility_key`` overridden). The query is the
        ``get_queryset()`` of the first request with the same
        :meth:`shared_rows_key` and context variables."""
        cls = type(self)
        return (
            self.action == "retrieve"
            and self.lookup_field in ("pk", self.model._meta.pk.name)
            and cls.get_object is GenericBinding.get_object
            and getattr(cls, "retrieve", None) is mixins.RetrieveMixin.retrieve
            and self._may_share_rows()
            # a get_queryset() may read other request data: such a request reads alone
            and all(key == "id" for key in self.request.data)
        )

    #: ``(pages, context key)``: the pages read by earlier requests of this
    #: trip, for :func:`.pagination.paginate` (see :func:`.batching.share_pages`).
    shared_pages: tuple[dict, Any] | None = None

    def can_share_page(self) -> bool:
        """Whether this request's page may be the page an identical earlier
        request of the same trip read (see :mod:`.batching`): a ``list`` or
        ``search`` answered by the default ``run``, ``initial``, handler, filters,
        pagination and serializer, of a binding whose rows are the same for
        everybody or that says who sees the same rows. Identical: the same
        :meth:`shared_rows_key`, context variables and request data."""
        cls = type(self)
        handler = PAGE_HANDLERS.get(self.action)
        return (
            handler is not None
            and getattr(cls, self.action, None) is handler
            and cls.filter_queryset is GenericBinding.filter_queryset
            and cls.optimize_queryset is GenericBinding.optimize_queryset
            and cls.paginate_queryset is GenericBinding.paginate_queryset
            and cls.get_serializer is GenericBinding.get_serializer
            and cls.get_serializer_context is GenericBinding.get_serializer_context
            and self._may_share_rows()
        )

    def _may_share_rows(self) -> bool:
        """What shared reads and shared pages both need: the default ``run`` and
        ``initial``, and rows the same for everybody (``get_queryset()`` not
        overridden) or for those with an equal ``get_visibility_key()`` (when
        the binding overrides it)."""
        cls = type(self)
        return (
            cls.run is GenericBinding.run
            and cls.initial is GenericBinding.initial
            and (
                cls.get_queryset is GenericBinding.get_queryset
                or cls.get_visibility_key is not GenericBinding.get_visibility_key
            )
        )

    def shared_page_key(self) -> Any:
        """Equal for requests that read the same page (with :meth:`can_share_page`)."""
        data = json.dumps(self.request.data, sort_keys=True, default=str)
        return (type(self), self.action, self.shared_rows_key(), data)

    def shared_rows_key(self) -> Any:
        """Requests whose keys are equal see the same rows (for shared reads):
        everybody when ``get_queryset()`` is not overridden, else
        :meth:`get_visibility_key`."""
        if type(self).get_queryset is GenericBinding.get_queryset:
            return None
        return self.get_visibility_key()

    def shared_lookup(self) -> Any:
        """The request's primary key as the model holds it (``"5"`` is ``5``)."""
        return self.model._meta.pk.to_python(self.get_lookup_value())

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        """Apply the request's ``filters``, ``query`` (search only) and ordering."""
        data = self.request.data
        queryset = filters.filter_queryset(self, queryset, data.get("filters"))
        if self.action in QUERY_ACTIONS:
            queryset = filters.search_queryset(self, queryset, data.get("query"))
        return filters.order_queryset(self, queryset, data.get("ordering"))

    def optimize_queryset(self, queryset: QuerySet) -> QuerySet:
        """Join or prefetch what the serializer reads, so a page costs a constant
        number of queries. Set ``select_related`` / ``prefetch_related`` to choose
        yourself; by default they are read off the serializer's fields."""
        select, prefetch = self.select_related, self.prefetch_related
        if select is None or prefetch is None:
            auto_select, auto_prefetch = related_lookups(self.get_serializer_class())
            select = auto_select if select is None else select
            prefetch = auto_prefetch if prefetch is None else prefetch
        if select:
            queryset = queryset.select_related(*select)
        if prefetch:
            queryset = queryset.prefetch_related(*prefetch)
        return queryset

    def paginate_queryset(self, queryset: QuerySet) -> dict[str, Any]:
        """The reply of ``list`` and ``search``: ``{"page", "limit", "count",
        "rows"}``."""
        return pagination.paginate(self, queryset, self.request.data)

    # -- live data: who sees a change -------------------------------------------

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

    def _rendering_key(self, visibility_key: Hashable) -> Hashable:
        """Which watchers can share a row's serialization: everybody served by
        the same serializer class when nothing the serializer reads depends on
        the user, even if ``get_queryset()`` does (that decides which rows, not
        how they look); else the watchers of the same visibility key. A binding
        that overrides ``get_visibility_key()`` shares per its own key only."""
        if type(self).get_visibility_key is GenericBinding.get_visibility_key:
            serializer_class = _serializer_for_everybody(self, SHOWING_HOOKS)
            if serializer_class is not None:
                return ("serializer", serializer_class)
        return visibility_key

    def get_push_queryset(self) -> QuerySet:
        """Where pushes read the rows that ``get_queryset()`` showed each watcher
        may see. Defaults to ``queryset`` or the model's manager; override it if
        your serializer needs annotations that your ``get_queryset()`` adds."""
        return GenericBinding.get_queryset(self)

    # -- writes ------------------------------------------------------------------

    def perform_create(self, serializer: BaseSerializer) -> None:
        """Save a new object, inside the action's transaction. Override it to set
        fields the client does not send (``serializer.save(owner=...)``)."""
        serializer.save()

    def perform_update(self, serializer: BaseSerializer) -> None:
        """Save the changes of ``update`` (and of a ``save`` that updates),
        inside the action's transaction."""
        serializer.save()

    def perform_destroy(self, instance: models.Model) -> None:
        """Delete the object of ``delete``, inside the action's transaction."""
        instance.delete()


def _tuple(value: Any) -> tuple | None:
    return None if value is None else tuple(value)


#: The hooks whose overrides may make rows or fields depend on the user.
USER_HOOKS = (
    "get_queryset",
    "get_serializer_class",
    "get_serializer",
    "get_serializer_context",
)
#: The hooks that decide how a row is shown, not which rows.
SHOWING_HOOKS = USER_HOOKS[1:]
_hooks_kept: dict[tuple, bool] = {}


def _serializer_for_everybody(
    binding: GenericBinding, hooks: tuple[str, ...] = USER_HOOKS
) -> type | None:
    """The binding's serializer class if what it shows cannot depend on the user
    (see :meth:`GenericBinding.get_visibility_key`), else ``None``. The class is
    part of the key: a binding that picks its serializer class per user some other
    way (a property, its ``__init__``) still never shares one user's frames.
    ``hooks`` are the overridable methods that must be the library's own."""
    cls = type(binding)
    kept = _hooks_kept.get((cls, hooks))
    if kept is None:
        kept = _hooks_kept[cls, hooks] = all(
            getattr(cls, hook) is getattr(GenericBinding, hook) for hook in hooks
        )
    if not kept:
        return None
    serializer_class = binding.get_serializer_class()
    return serializer_class if reads_only_the_object(serializer_class) else None


class AsyncBinding(
    mixins.SubscribeMixin,
    mixins.RetrieveMixin,
    mixins.ListMixin,
    mixins.SearchMixin,
    mixins.CreateMixin,
    mixins.UpdateMixin,
    mixins.SaveMixin,
    mixins.DeleteMixin,
    GenericBinding,
):
    """A binding answering every built-in event for ``model``.

    ``model = Product`` is enough: the stream is ``"<app_label>.Product"`` and every
    field except ``DEFAULT_FIELDS_EXCLUDE`` is exposed. Set ``actions`` to a subset
    of the built-in action names to answer the others with 405.
    """

    abstract = True
