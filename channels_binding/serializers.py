"""Serializers built for bindings that declare none, and the related fields a
serializer reads, so that lists fetch them in a constant number of queries."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from rest_framework import serializers


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
