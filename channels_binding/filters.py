"""Reading ``filters``, ``ordering`` and ``query`` from a request's data.

Only what a binding declares is accepted: an undeclared field is a 400 that names
it, never a silent pass-through to the ORM (which would let a client filter or
order by any column, related ones included).
"""

from __future__ import annotations

import json
import operator
from functools import reduce
from typing import Any

from django.core.exceptions import FieldDoesNotExist, FieldError
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.db.models import Q, QuerySet

from .exceptions import ValidationError
from .settings import binding_settings

SCALARS = (str, int, float, bool, type(None))
#: Integers a database column can hold (a signed 64-bit ``BigIntegerField``).
#: Django catches larger ones only on some lookups of plain integer fields; on a
#: foreign key or in ``__in`` the driver fails when the rows are read (SQLite:
#: ``OverflowError``), so they are refused with the other bad values.
INTEGER_RANGE = range(-(2**63), 2**63)
MAX_SEARCH_TERMS = 16
SEARCH_PREFIXES = {"^": "istartswith", "=": "iexact"}


def invalid(key: str, message: str) -> ValidationError:
    return ValidationError({key: [message]})


def value_length(value: Any) -> int:
    """How long a filter value is, in characters, as a query string spells it: a
    string is itself, a number or a boolean its JSON text, a list its items joined
    by commas (``[1, 22, 333]`` is ``1,22,333``: 8)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list | tuple):
        return sum(map(value_length, value)) + max(len(value) - 1, 0)
    if value is None or isinstance(value, bool):
        return 4 if value is None or value else 5  # null, true, false
    if isinstance(value, int | float):
        return len(repr(value))  # JSON's spelling, but for floats like 1e+16
    try:
        return len(json.dumps(value))
    except (TypeError, ValueError):
        return len(str(value))


def check_length(key: str, value: Any) -> None:
    """A filter value within ``MAX_FILTER_VALUE_LENGTH`` characters (see
    :func:`value_length`), else a 400 naming the filter."""
    limit = binding_settings.MAX_FILTER_VALUE_LENGTH
    if limit is not None and value_length(value) > limit:
        raise invalid(key, too_long(limit, value_length(value)))


def too_long(limit: int, length: int) -> str:
    return f"Ensure this value has at most {limit} characters (it has {length})."


def declared_filters(binding: Any) -> dict[str, str]:
    """Every accepted filter key mapped to its ORM lookup.

    ``filter_fields`` is a list of field names (exact match) or a dict of field
    name to lookups, as in django-filter: ``{"price": ["exact", "lt", "gt"]}``
    accepts ``price``, ``price__lt`` and ``price__gt``.
    """
    fields = binding.filter_fields or ()
    if not isinstance(fields, dict):
        fields = {name: ["exact"] for name in fields}
    accepted = {}
    for name, lookups in fields.items():
        for lookup in lookups:
            key = name if lookup == "exact" else f"{name}__{lookup}"
            accepted[key] = key
    return accepted


def filter_queryset(binding: Any, queryset: QuerySet, filters: Any):
    if filters is None or filters == {}:
        return queryset
    if not isinstance(filters, dict):
        raise invalid("filters", "Must be an object of field names to values.")
    filterset_class = getattr(binding, "filterset_class", None)
    if filterset_class is not None:
        return _filterset(binding, filterset_class, queryset, filters)
    accepted = declared_filters(binding)
    for key, value in filters.items():
        if key not in accepted:
            allowed = ", ".join(sorted(accepted)) or "none"
            raise invalid(
                key, f"Filtering on {key!r} is not allowed. Allowed: {allowed}."
            )
        if isinstance(value, list):
            if not key.endswith(("__in", "__range")) or not all(
                isinstance(item, SCALARS) for item in value
            ):
                raise invalid(key, "A list is accepted only for __in and __range.")
        elif not isinstance(value, SCALARS):
            raise invalid(key, "Must be a string, number, boolean or null.")
        check_length(key, value)
        if any(
            isinstance(item, int) and item not in INTEGER_RANGE
            for item in (value if isinstance(value, list) else [value])
        ):
            raise invalid(key, "Number out of range.")
        value = _booleans(queryset.model, key, value)
        try:
            queryset = queryset.filter(**{key: value})
        except (ValueError, TypeError, DjangoValidationError, FieldError):
            raise invalid(key, f"{value!r} is not a valid value.") from None
    return queryset


def _booleans(model: Any, key: str, value: Any) -> Any:
    """``"true"`` and ``"false"`` (a query string's spelling, which Django's
    ``BooleanField`` does not read) as booleans where a boolean is meant: an
    ``isnull`` lookup, or a boolean field's exact or ``in`` match. Any other value
    is kept; an ``isnull`` that is still not a boolean is a 400 here rather than
    an error when the rows are read, and so is a number an integer column cannot
    hold, even spelled as a string."""
    parts = key.split("__")
    field = None
    while parts:
        try:
            field = model._meta.get_field(parts[0])
        except (FieldDoesNotExist, AttributeError):
            break
        parts.pop(0)
        model = field.related_model
    lookup = parts[-1] if parts else "exact"
    if lookup == "isnull" or (
        isinstance(field, models.BooleanField) and lookup in ("exact", "in")
    ):
        if isinstance(value, list):
            value = [_boolean(item) for item in value]
        else:
            value = _boolean(value)
    if lookup == "isnull" and not isinstance(value, bool):
        raise invalid(key, "Must be true or false.")
    if lookup != "isnull" and isinstance(_compared(field), models.IntegerField):
        for item in value if isinstance(value, list) else [value]:
            if _integer(item) not in INTEGER_RANGE:
                raise invalid(key, "Number out of range.")
    return value


def _compared(field: Any) -> Any:
    """The field a filter on ``field`` compares values with: a relation's key."""
    if field is None or not field.is_relation or field.related_model is None:
        return field
    return getattr(field, "target_field", None) or field.related_model._meta.pk


def _integer(item: Any) -> int:
    """``item`` as an integer column would read it; 0 when it would not (the
    column refuses it as a value of the wrong kind, a 400 too)."""
    if isinstance(item, bool):
        return 0
    try:
        return int(item.strip() if isinstance(item, str) else item)
    except (TypeError, ValueError, OverflowError):
        return 0


def _boolean(value: Any) -> Any:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def _filterset(binding, filterset_class, queryset, filters):
    filterset = filterset_class(
        data=filters, queryset=queryset, request=binding.request
    )
    unknown = sorted(set(filters) - set(filterset.filters))
    if unknown:
        raise invalid(unknown[0], f"Filtering on {unknown[0]!r} is not allowed.")
    for key, value in filters.items():
        check_length(key, value)
    if not filterset.is_valid():
        raise ValidationError(
            {key: [str(e) for e in errors] for key, errors in filterset.errors.items()}
        )
    return filterset.qs


def ordering_terms(binding: Any, ordering: Any) -> list[str]:
    """The requested ordering as ORM terms, each checked against ``ordering_fields``."""
    if ordering is None or ordering == "" or ordering == []:
        return []
    if isinstance(ordering, str):
        terms = [term.strip() for term in ordering.split(",")]
    elif isinstance(ordering, list) and all(isinstance(t, str) for t in ordering):
        terms = [term.strip() for term in ordering]
    else:
        raise invalid("ordering", "Must be a field name or a list of field names.")
    allowed = set(binding.ordering_fields or ())
    for term in terms:
        # One "-" at most: the ORM reads "--name" as the field "-name" (a 500).
        name = term[1:] if term.startswith("-") else term
        if name not in allowed:
            names = ", ".join(sorted(allowed)) or "none"
            raise invalid(
                "ordering", f"Ordering by {name!r} is not allowed. Allowed: {names}."
            )
    return terms


def order_queryset(binding: Any, queryset: QuerySet, ordering: Any):
    """Order by the request's terms, else the binding's, else the model's; the
    primary key always ends the ordering so pages never overlap or skip rows."""
    terms = ordering_terms(binding, ordering)
    if not terms:
        default = binding.ordering
        if isinstance(default, str):  # ordering = "-price", as DRF allows
            default = [default]
        terms = list(
            default or queryset.query.order_by or queryset.model._meta.ordering or []
        )
    pk_names = {"pk", queryset.model._meta.pk.name}
    if not any(isinstance(t, str) and t.lstrip("-") in pk_names for t in terms):
        terms.append("pk")
    return queryset.order_by(*terms)


def search_terms(query: str) -> list[str]:
    """The words of ``query`` a search uses: split at spaces and commas, the first
    ``MAX_SEARCH_TERMS``, each once."""
    return list(dict.fromkeys(query.replace(",", " ").split()[:MAX_SEARCH_TERMS]))


def check_query(query: Any) -> None:
    """``query`` is ``None`` or a string of at most ``MAX_QUERY_LENGTH``
    characters, else a 400 naming ``query``."""
    if query is None:
        return
    if not isinstance(query, str):
        raise invalid("query", "Must be a string.")
    limit = binding_settings.MAX_QUERY_LENGTH
    if limit is not None and len(query) > limit:
        raise invalid("query", too_long(limit, len(query)))


def search_queryset(binding: Any, queryset: QuerySet, query: Any):
    """Every word of ``query`` must match at least one of ``search_fields``.

    A field may start with ``^`` (starts with) or ``=`` (exact), as in DRF's
    ``SearchFilter``; otherwise it matches case-insensitively anywhere.
    """
    check_query(query)
    if query is None:
        return queryset
    terms = search_terms(query)
    if not terms:
        return queryset
    fields = binding.search_fields or ()
    if not fields:
        raise invalid("query", "This binding declares no search_fields.")
    lookups = []
    for field in fields:
        lookup = SEARCH_PREFIXES.get(field[0])
        name = field[1:] if lookup else field
        lookups.append(f"{name}__{lookup or 'icontains'}")
    conditions = [
        reduce(operator.or_, (Q(**{lookup: term}) for lookup in lookups))
        for term in terms
    ]
    related = any("__" in field.lstrip("^=") for field in fields)
    if not related:
        # One filter() for every word: the same rows as one filter() per word
        # when no field goes through a relation, for a fraction of the ORM's work
        # (this runs again for every change a watched search is checked against).
        return queryset.filter(*conditions)
    for condition in conditions:
        # Through a to-many relation, each word may match another related row.
        queryset = queryset.filter(condition)
    return queryset.distinct()
