"""Whether a changed row is in a queryset, decided from the row itself.

A push asks, for every visibility key and every watched query, which of the
changed rows its queryset contains (see :mod:`.pushes`). Asked in SQL, that is one
probe query part per key, and with a thousand users behind a per-user
``get_queryset()`` Django spends far longer building and compiling a thousand
parts than the database spends answering them.

Most of those querysets are plain filters on the model's own columns:
``owner=user``, ``in_stock=True``, ``status__in=[...]``, combined with ``Q``
objects and ``exclude()``. :func:`condition` turns such a queryset into a small
tree that :func:`holds` evaluates on a row read in the push's snapshot, with SQL's
three-valued logic (a comparison with NULL is unknown, ``NOT unknown`` is unknown,
and only a true condition lets a row in), so the answer is the one the database
would give. Every other queryset (a join, a subquery, an annotation, a slice,
``distinct()``, ``extra()``, a text, decimal or date column, a custom field or
lookup) gets ``None`` and is probed in SQL as before.

Only integer, boolean and foreign-key columns (to an integer key) of the model's
own table are compared in memory: there, Python's comparison is the database's.
Text comparison depends on the database's collation, decimals and dates on its
conversions, so those stay in SQL.
"""

from __future__ import annotations

from typing import Any

from django.db import connections, models
from django.db.models import lookups
from django.db.models.expressions import Col
from django.db.models.fields import related_lookups
from django.db.models.query import ModelIterable
from django.db.models.sql.where import AND, OR, NothingNode, WhereNode

#: Column types whose values Python compares as the database does (exact types:
#: a subclass may convert values on their way in or out).
COLUMNS = {
    models.AutoField,
    models.BigAutoField,
    models.SmallAutoField,
    models.IntegerField,
    models.BigIntegerField,
    models.SmallIntegerField,
    models.PositiveIntegerField,
    models.PositiveBigIntegerField,
    models.PositiveSmallIntegerField,
    models.BooleanField,
}
RELATIONS = {models.ForeignKey, models.OneToOneField}

#: Lookup class → operator (exact classes, for the same reason).
LOOKUPS = {
    lookups.Exact: "exact",
    lookups.In: "in",
    lookups.IsNull: "isnull",
    lookups.LessThan: "lt",
    lookups.LessThanOrEqual: "lte",
    lookups.GreaterThan: "gt",
    lookups.GreaterThanOrEqual: "gte",
    related_lookups.RelatedExact: "exact",
    related_lookups.RelatedIn: "in",
    related_lookups.RelatedIsNull: "isnull",
    related_lookups.RelatedLessThan: "lt",
    related_lookups.RelatedLessThanOrEqual: "lte",
    related_lookups.RelatedGreaterThan: "gt",
    related_lookups.RelatedGreaterThanOrEqual: "gte",
}
#: IntegerField's own lookups: values outside the column's range on the database
#: make Django match all rows or none, so those values are left to SQL.
RANGED = {
    getattr(lookups, name): operator
    for name, operator in (
        ("IntegerFieldExact", "exact"),
        ("IntegerGreaterThan", "gt"),
        ("IntegerGreaterThanOrEqual", "gte"),
        ("IntegerLessThan", "lt"),
        ("IntegerLessThanOrEqual", "lte"),
    )
    if hasattr(lookups, name)
}

#: Values outside a 64-bit integer are left to the database (which may refuse them).
SMALLEST, LARGEST = -(2**63), 2**63 - 1

COMPARE = {
    "exact": lambda value, rhs: value == rhs,
    "lt": lambda value, rhs: value < rhs,
    "lte": lambda value, rhs: value <= rhs,
    "gt": lambda value, rhs: value > rhs,
    "gte": lambda value, rhs: value >= rhs,
}


class Unsupported(Exception):
    """The queryset, or the row, is one this module leaves to SQL."""


def condition(queryset: Any, model: type[models.Model]) -> tuple | None:
    """The tree :func:`holds` evaluates for ``queryset``, or ``None`` when it has
    to be probed in SQL."""
    query = getattr(queryset, "query", None)
    if (
        query is None
        or getattr(queryset, "_iterable_class", None) is not ModelIterable
        or query.model is not model
        or query.is_sliced
        or query.distinct
        or query.annotations
        or query.extra
        or query.extra_tables
        or query.combinator
        or query.select
        or not query.default_cols
        or query.group_by is not None
        or query.select_for_update
        or type(query.where) is not WhereNode
    ):
        return None
    # The first alias is the model's table (Query.base_table, read without caching
    # it on a query that may be compiled later); none while no filter named it.
    base = next(iter(query.alias_map), None)
    if any(count for alias, count in query.alias_refcount.items() if alias != base):
        return None  # a join takes part
    try:
        ops = connections[queryset.db].ops
        return _Translation(base, _columns(model), ops).tree(query.where, top=True)
    except Unsupported:
        return None


def holds(tree: tuple, row: models.Model) -> bool:
    """Whether ``row`` (an instance of the model) satisfies ``tree``; raises
    :class:`Unsupported` if a column it compares is not loaded or holds a value
    this module does not compare."""
    return _value(tree, row.__dict__) is True


def _columns(model: type[models.Model]) -> dict[str, models.Field]:
    meta = model._meta.concrete_model._meta
    return {field.attname: field for field in meta.local_concrete_fields}


def _comparable(field: models.Field) -> bool:
    if type(field) in RELATIONS:
        targets = field.foreign_related_fields
        return len(targets) == 1 and _comparable(targets[0])
    return type(field) in COLUMNS


class _Translation:
    """A queryset's WHERE tree into :func:`holds`' tree, or :class:`Unsupported`."""

    def __init__(self, base: str | None, columns: dict, ops: Any) -> None:
        self.base = base
        self.columns = columns
        self.ops = ops

    def tree(self, node: Any, top: bool = False) -> tuple:
        kind = type(node)
        if kind is NothingNode:
            return ("false",)
        if kind is WhereNode:
            if node.connector not in (AND, OR):
                raise Unsupported  # XOR
            if not node.children:
                if top and not node.negated:
                    return ("true",)  # no filter at all
                raise Unsupported
            children = tuple(self.tree(child) for child in node.children)
            return ("node", node.connector == AND, node.negated, children)
        return self.lookup(node, kind)

    def lookup(self, node: Any, kind: type) -> tuple:
        operator = LOOKUPS.get(kind) or RANGED.get(kind)
        lhs = getattr(node, "lhs", None)
        if operator is None or type(lhs) is not Col or lhs.alias != self.base:
            raise Unsupported
        field = lhs.target
        if self.columns.get(field.attname) is not field or not _comparable(field):
            raise Unsupported
        if not node.rhs_is_direct_value():
            raise Unsupported
        rhs = node.rhs
        if operator == "isnull":
            if type(rhs) is not bool:
                raise Unsupported
            return ("isnull", field.attname, rhs)
        if operator == "in":
            if not isinstance(rhs, (list, tuple, set, frozenset)):
                raise Unsupported
            # As Django does: NULL equals nothing, so it is left out of the list.
            values = frozenset(_integer(value) for value in rhs if value is not None)
            return ("in", field.attname, values)
        value = _integer(rhs)
        if kind in RANGED:
            low, high = self.ops.integer_field_range(field.get_internal_type())
            if (low is not None and value < low) or (high is not None and value > high):
                raise Unsupported
        return (operator, field.attname, value)


def _integer(value: Any) -> int:
    if type(value) not in (int, bool) or not SMALLEST <= value <= LARGEST:
        raise Unsupported
    return value


def _value(tree: tuple, row: dict) -> bool | None:
    """True, False, or None for unknown (SQL's NULL)."""
    operator = tree[0]
    if operator == "node":
        _, conjunction, negated, children = tree
        result: bool | None = conjunction
        for child in children:
            value = _value(child, row)
            if value is (not conjunction):
                result = value
                break
            if value is None:
                result = None
        if negated and result is not None:
            result = not result
        return result
    if operator == "true":
        return True
    if operator == "false":
        return False
    _, attname, rhs = tree
    try:
        value = row[attname]
    except KeyError:
        raise Unsupported from None  # a deferred column
    if value is None:
        return (rhs is True) if operator == "isnull" else None
    if type(value) not in (int, bool):
        raise Unsupported
    if operator == "isnull":
        return rhs is False
    if operator == "in":
        return value in rhs
    return COMPARE[operator](value, rhs)
