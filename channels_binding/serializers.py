"""Serializers built for bindings that declare none, the related fields a
serializer reads (so that lists fetch them in a constant number of queries), and
fields built once per serializer class for reading one object."""

from __future__ import annotations

import threading
import weakref
from functools import cache
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.core.signals import setting_changed
from django.db import models
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.utils.serializer_helpers import BindingDict


def model_serializer_class(
    model: type[models.Model],
    fields: tuple[str, ...] | None,
    exclude: tuple[str, ...] | None,
    read_only_fields: tuple[str, ...] | None,
    default_exclude: tuple[str, ...],
) -> type[serializers.ModelSerializer]:
    """A ``ModelSerializer`` class for ``model``, built once per argument set.

    With neither ``fields`` nor ``exclude``, every field is exposed except the
    ``DEFAULT_FIELDS_EXCLUDE`` setting's (``password`` by default).
    """
    return _build(model, fields, exclude, read_only_fields, default_exclude)


@cache
def _build(model, fields, exclude, read_only_fields, default_exclude):
    meta: dict[str, Any] = {"model": model}
    if fields is not None:
        meta["fields"] = list(fields)
    else:
        names = {f.name for f in model._meta.get_fields()}
        excluded = default_exclude if exclude is None else exclude
        dropped = [name for name in excluded if name in names]
        if dropped:
            meta["exclude"] = dropped
        else:
            meta["fields"] = "__all__"
    if read_only_fields:
        meta["read_only_fields"] = list(read_only_fields)
    name = f"{model.__name__}BindingSerializer"
    return type(
        name,
        (serializers.ModelSerializer,),
        {"Meta": type("Meta", (), meta), "__module__": __name__},
    )


@cache
def related_lookups(
    serializer_class: type[serializers.BaseSerializer],
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(select_related, prefetch_related)`` paths that a serializer's fields read.

    Forward foreign keys and one-to-ones read through a nested serializer or a
    non-primary-key related field are joined; many-valued relations are
    prefetched. A primary-key field reads the ``*_id`` column and needs neither.
    """
    serializer = serializer_class()
    model = getattr(getattr(serializer_class, "Meta", None), "model", None)
    select: list[str] = []
    prefetch: list[str] = []
    if model is not None:
        _walk(serializer, model, "", False, select, prefetch)
    return tuple(select), tuple(prefetch)


def _walk(serializer, model, prefix, in_prefetch, select, prefetch) -> None:
    for field in serializer.fields.values():
        if field.write_only or field.source == "*" or "." in field.source:
            continue
        try:
            model_field = model._meta.get_field(field.source)
        except FieldDoesNotExist:
            continue
        if not model_field.is_relation or model_field.related_model is None:
            continue
        path = prefix + field.source
        many = model_field.many_to_many or model_field.one_to_many
        child = getattr(field, "child", None) or getattr(field, "child_relation", None)
        nested = field if isinstance(field, serializers.BaseSerializer) else None
        if isinstance(field, serializers.ListSerializer):
            nested = field.child
        if many or in_prefetch:
            prefetch.append(path)
        elif nested is not None or not _pk_only(child or field):
            select.append(path)
        else:
            continue
        if isinstance(nested, serializers.Serializer):
            _walk(
                nested,
                model_field.related_model,
                path + "__",
                many or in_prefetch,
                select,
                prefetch,
            )


def _pk_only(field: Any) -> bool:
    check = getattr(field, "use_pk_only_optimization", None)
    return bool(check and check())


# -- fields built once -------------------------------------------------------------

#: What a serializer class overrides if its fields may differ from one instance to
#: the next (DRF's "dynamically modifying fields" recipe overrides ``__init__``).
FIELD_BUILDERS = frozenset(
    {
        "__init__",
        "fields",
        "get_fields",
        "get_field_names",
        "get_default_field_names",
        "get_extra_kwargs",
        "include_extra_kwargs",
        "get_uniqueness_extra_kwargs",
        "build_field",
        "build_standard_field",
        "build_relational_field",
        "build_nested_field",
        "build_property_field",
        "build_url_field",
        "build_unknown_field",
    }
)

_templates: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# Reentrant: building a template runs the serializer's own code.
_templates_lock = threading.RLock()


def _forget_templates(setting: str, **kwargs: Any) -> None:
    # Fields read DRF's settings when built (COERCE_DECIMAL_TO_STRING, ...).
    if setting == "REST_FRAMEWORK":
        with _templates_lock:
            _templates.clear()


setting_changed.connect(_forget_templates, dispatch_uid="channels_binding.templates")


def reuse_fields(serializer: serializers.BaseSerializer) -> None:
    """Give ``serializer`` copies of fields built once for its class.

    DRF's ``ModelSerializer`` builds its fields again for every instance, which is
    most of the cost of serializing one object (see docs/benchmarks.rst). For a
    serializer that only reads, the fields built for the first instance of its
    class serve every later one, each copy bound to its new parent (so ``context``
    is the new serializer's). Classes whose fields may depend on the instance (they
    override a field-building method, see ``FIELD_BUILDERS``), fields that hold
    other fields (nested serializers, ``many`` relations, list and dict fields)
    and field classes not from DRF keep DRF's own behaviour.
    """
    template = _template(type(serializer))
    if template is not None and "fields" not in serializer.__dict__:
        _give_fields(serializer, template)


def read_serializer(
    cls: type[serializers.BaseSerializer], instance: Any, context: dict
) -> serializers.BaseSerializer:
    """``cls(instance, context=context)``, made the quick way when the class
    allows :func:`reuse_fields`: a copy of an instance made once, with copies of
    its fields, or with the fields themselves when none of them can tell
    serializers apart (see :func:`_shared_fields`)."""
    template = _template(cls)
    if template is None:
        serializer = cls(instance, context=context)
        return serializer
    serializer = object.__new__(cls)
    serializer.__dict__.update(template.state)
    serializer.instance = instance
    serializer._context = context
    serializer._args = (instance,)
    serializer._kwargs = {"context": context}
    _give_fields(serializer, template, share=True)
    return serializer


def read_many_serializer(
    cls: type[serializers.BaseSerializer], instances: Any, context: dict
) -> serializers.BaseSerializer:
    """``cls(instances, many=True, context=context)``, its child made by
    :func:`read_serializer` (so a page's fields are not built again either) when
    the class keeps DRF's ``many_init``."""
    if (
        _template(cls) is None
        or cls.many_init.__func__ is not serializers.BaseSerializer.many_init.__func__
    ):
        return cls(instances, many=True, context=context)
    child = read_serializer(cls, instances, context)
    meta = getattr(cls, "Meta", None)
    list_class = getattr(meta, "list_serializer_class", serializers.ListSerializer)
    return list_class(instances, child=child, context=context)


class _Template:
    """What every reading instance of one serializer class starts from:
    ``shared`` is the fields every instance may use as they are (see
    :func:`_shared_fields`), else ``None`` and each gets copies of ``fields``."""

    def __init__(self, state: dict, fields: dict, shared: Any = None) -> None:
        self.state = state
        self.fields = fields
        self.shared = shared


#: DRF field classes (exact) whose ``get_attribute()`` and ``to_representation()``
#: read only the value: not ``context``, ``parent`` or ``root``.
CONTEXT_FREE_FIELDS = frozenset(
    {
        serializers.BooleanField,
        serializers.CharField,
        serializers.ChoiceField,
        serializers.DateField,
        serializers.DateTimeField,
        serializers.DecimalField,
        serializers.DurationField,
        serializers.EmailField,
        serializers.FloatField,
        serializers.IntegerField,
        serializers.JSONField,
        serializers.PrimaryKeyRelatedField,
        serializers.ReadOnlyField,
        serializers.SlugField,
        serializers.SlugRelatedField,
        serializers.StringRelatedField,
        serializers.TimeField,
        serializers.URLField,
        serializers.UUIDField,
    }
)


def _shared_fields(cls: type, serializer: Any) -> dict | None:
    """``serializer``'s own fields, for every reading instance of ``cls`` to use
    without copies, when nothing can tell them apart: the class has no reading
    code of its own (:func:`reads_only_the_object`) and every field is one of
    ``CONTEXT_FREE_FIELDS``, which never look at the serializer they belong to.
    Else ``None``."""
    fields = dict(serializer.fields)
    if all(
        type(field) in CONTEXT_FREE_FIELDS and field.source != "*"
        for field in fields.values()
    ) and reads_only_the_object(cls):
        return fields
    return None


def _give_fields(
    serializer: serializers.BaseSerializer, template: _Template, share: bool = False
) -> None:
    fields = BindingDict(serializer)
    if share and template.shared is not None:
        # The same field objects in a mapping of its own: removing or adding a
        # field changes this serializer only.
        fields.fields.update(template.shared)
        serializer.__dict__["fields"] = fields
        return
    for name, field in template.fields.items():
        copy = object.__new__(type(field))
        copy.__dict__.update(field.__dict__)
        copy.parent = serializer
        fields.fields[name] = copy
    serializer.__dict__["fields"] = fields


def _template(cls: type) -> _Template | None:
    try:
        return _templates[cls]
    except KeyError:
        pass
    with _templates_lock:
        if cls not in _templates:
            _templates[cls] = _build_template(cls)
        return _templates[cls]


def _build_template(cls: type) -> _Template | None:
    if (
        not issubclass(cls, serializers.Serializer)
        or not _from_drf(type(cls))  # a metaclass of its own may change instances
        or _builds_own_fields(cls)
    ):
        return None
    try:
        serializer = cls(None, context={})
        state = dict(serializer.__dict__)
        fields = dict(serializer.fields)
    except Exception:
        return None
    for field in fields.values():
        if not _stateless(field):
            return None
    return _Template(state, fields, _shared_fields(cls, serializer))


def _stateless(field: Any) -> bool:
    """Whether copies of ``field`` sharing its attributes read like fresh ones:
    DRF's own fields, which hold no other field and keep no state of their own
    while reading. A field class of another module may (DRF deep-copies declared
    fields for every serializer)."""
    return (
        _from_drf(type(field))
        and not isinstance(field, serializers.BaseSerializer)
        and not any(hasattr(field, name) for name in ("child", "child_relation"))
    )


def _builds_own_fields(cls: type) -> bool:
    return any(FIELD_BUILDERS.intersection(vars(k)) for k in _project_classes(cls))


def _project_classes(cls: type) -> list[type]:
    """The classes of ``cls``'s MRO that are not DRF's (nor ``object``), mixins
    placed after DRF's classes included."""
    return [k for k in cls.__mro__ if k is not object and not _from_drf(k)]


# -- output that depends on nothing but the object ----------------------------------

_object_only: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def reads_only_the_object(cls: type) -> bool:
    """Whether ``cls`` serializes an object the same way for every request: DRF's
    own field classes only, no ``SerializerMethodField``, nested serializers alike,
    and no code of its own but validation and writes (see :func:`_harmless`). Such a
    serializer cannot show one user something meant for another, so a change
    watched by many users is serialized once for all of them."""
    try:
        return _object_only[cls]
    except KeyError:
        pass
    try:
        result = _check_object_only(cls, set())
    except Exception:
        result = False
    _object_only[cls] = result
    return result


#: What a serializer class of the project may define and still serialize an object
#: the same way for everybody: its ``Meta``, and the code of validation and writes.
WRITE_ONLY_CODE = frozenset(
    {
        "Meta",
        "create",
        "update",
        "save",
        "validate",
        "to_internal_value",
        "run_validation",
        "get_validators",
    }
)
#: Names DRF calls or reads on a serializer; overriding one with code may change
#: what it shows (``to_representation``, ``data``, ``fields``, ``_readable_fields``).
DRF_NAMES = (
    frozenset(
        name
        for cls in (serializers.ModelSerializer, serializers.HyperlinkedModelSerializer)
        for name in dir(cls)
    )
    | FIELD_BUILDERS
)


#: Names through which code changes what any serializer shows, whatever they hold.
UNSAFE_NAMES = frozenset(
    {"__getattr__", "__getattribute__", "_data", "_errors", "_context", "__class__"}
)


def _harmless(name: str, value: Any) -> bool:
    """Whether a serializer class attribute cannot make the output depend on the
    request: plain data and classes (the fields they make are checked anyway),
    validation and write code, and helpers DRF never calls. Code under a name DRF
    uses (a method, a property, a ``cached_property``) may."""
    if name in UNSAFE_NAMES:
        return False
    if name in WRITE_ONLY_CODE or name.startswith("validate_"):
        return True
    if isinstance(value, type) or not hasattr(type(value), "__get__"):
        return True  # a class, or plain data
    if name.startswith("__") and not callable(value) and name != "__init__":
        return True  # the class's own bookkeeping (__dict__, __weakref__)
    return name not in DRF_NAMES


def _check_object_only(cls: type, seen: set) -> bool:
    if cls in seen:
        return True
    seen.add(cls)
    if not issubclass(cls, serializers.Serializer) or not _from_drf(type(cls)):
        return False  # not a serializer, or a metaclass of the project's
    for klass in _project_classes(cls):
        if not all(_harmless(name, value) for name, value in vars(klass).items()):
            return False
    return all(
        _field_object_only(field, seen)
        for field in cls(context={}).fields.values()
        if not field.write_only
    )


def _field_object_only(field: Any, seen: set) -> bool:
    """Whether ``field`` reads only the object, whatever it holds, at any depth."""
    default = getattr(field, "default", empty)
    if default is not empty and callable(default):
        return False  # read when the attribute is missing: CurrentUserDefault()
    if isinstance(field, serializers.ListSerializer):
        return _from_drf(type(field)) and _field_object_only(field.child, seen)
    if isinstance(field, serializers.BaseSerializer):
        return _check_object_only(type(field), seen)
    if isinstance(field, serializers.SerializerMethodField) or not _from_drf(
        type(field)
    ):
        return False
    for name in ("child", "child_relation"):
        inner = getattr(field, name, None)
        if inner is not None and not _field_object_only(inner, seen):
            return False
    return True


def _from_drf(cls: type) -> bool:
    return cls.__module__.startswith("rest_framework.")
