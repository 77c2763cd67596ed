"""Visibility decided from the changed row (channels_binding.live.matching) gives
the database's answer: random filters on integer, boolean and nullable foreign-key
columns, combined with ``Q``, ``|``, ``~`` and ``exclude()``, are evaluated on
every row both ways; everything the module cannot compare exactly is left to SQL.

(Django guards a negated comparison on a nullable column with ``IS NOT NULL``, so
for the querysets it builds, SQL's unknown and false lead to the same rows; the
module keeps the three values anyway, for the trees Django may build tomorrow.)
"""

import random

import pytest
from django.contrib.auth import get_user_model
from django.db.models import Count, F, Q

from channels_binding.live.matching import Unsupported, condition, holds
from tests.shop.models import Category, Note, Product

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows():
    categories = [Category.objects.create(name=f"c{n}") for n in range(3)]
    products = []
    for n in range(12):
        products.append(
            Product.objects.create(
                name=f"p{n}",
                price=n,
                in_stock=n % 3 != 0,
                category=None if n % 4 == 0 else categories[n % 3],
            )
        )
    return categories, list(Product.objects.order_by("pk"))


def leaf(rng, categories, products):
    pks = [p.pk for p in products]
    cats = [c.pk for c in categories] + [max(c.pk for c in categories) + 1]
    choice = rng.randrange(9)
    if choice == 0:
        return Q(in_stock=rng.random() < 0.5)
    if choice == 1:
        return Q(category=rng.choice([None, *categories]))
    if choice == 2:
        return Q(category__isnull=rng.random() < 0.5)
    if choice == 3:
        values = rng.sample([*cats, None], rng.randrange(0, 4))
        return Q(category__in=values)
    if choice == 4:
        return Q(category_id=rng.choice(cats))
    if choice == 5:
        lookup = rng.choice(["lt", "lte", "gt", "gte"])
        return Q(**{f"id__{lookup}": rng.choice(pks)})
    if choice == 6:
        lookup = rng.choice(["lt", "gte"])
        return Q(**{f"category__{lookup}": rng.choice(cats)})
    if choice == 7:
        return Q(pk__in=rng.sample(pks, rng.randrange(0, 5)))
    return Q(pk=rng.choice(pks))


def expression(rng, categories, products, depth=0):
    if depth >= 3 or rng.random() < 0.35:
        q = leaf(rng, categories, products)
    else:
        left = expression(rng, categories, products, depth + 1)
        right = expression(rng, categories, products, depth + 1)
        q = left & right if rng.random() < 0.5 else left | right
    return ~q if rng.random() < 0.3 else q


def test_random_filters_match_what_the_database_returns(rows):
    categories, products = rows
    rng = random.Random(20261204)
    checked = 0
    for _ in range(400):
        q = expression(rng, categories, products)
        queryset = Product.objects.all()
        queryset = queryset.exclude(q) if rng.random() < 0.3 else queryset.filter(q)
        if rng.random() < 0.3:
            queryset = queryset.filter(expression(rng, categories, products))
        tree = condition(queryset, Product)
        assert tree is not None, queryset.query
        truth = set(queryset.values_list("pk", flat=True))
        decided = {p.pk for p in products if holds(tree, p)}
        assert decided == truth, str(queryset.query)
        checked += bool(truth) and truth != {p.pk for p in products}
    assert checked > 100  # most filters split the rows: the check has teeth


def test_per_user_querysets_are_decided_from_the_row(user, other_user):
    mine = Note.objects.create(owner=user, text="a")
    theirs = Note.objects.create(owner=other_user, text="b")
    for queryset in (
        Note.objects.filter(owner=user),
        Note.objects.filter(owner=user.pk),
        Note.objects.filter(owner_id=user.pk),
        Note.objects.filter(Q(owner=user) | Q(pk=-1)),
        Note.objects.exclude(owner=other_user),
        Note.objects.filter(owner__in=[user]),
    ):
        tree = condition(queryset, Note)
        assert tree is not None, queryset.query
        assert holds(tree, mine) and not holds(tree, theirs)
    assert holds(condition(Note.objects.all(), Note), theirs)
    assert not holds(condition(Note.objects.none(), Note), mine)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Product.objects.filter(name="p1"),  # text: the collation decides
        lambda: Product.objects.filter(price__lt=3),  # decimal
        lambda: Product.objects.filter(created__isnull=False),  # a date column
        lambda: Product.objects.filter(category__name="c1"),  # a join
        lambda: Product.objects.filter(tags__name="t"),
        lambda: Product.objects.filter(pk__in=Product.objects.filter(in_stock=True)),
        lambda: Product.objects.filter(category_id=F("id")),
        lambda: Product.objects.annotate(n=Count("tags")).filter(in_stock=True),
        lambda: Product.objects.filter(in_stock=True).distinct(),
        lambda: Product.objects.filter(in_stock=True)[:5],
        lambda: Product.objects.filter(in_stock=True).extra(where=["1 = 1"]),
        lambda: Product.objects.filter(in_stock=True).values("pk"),
        lambda: Product.objects.filter(Q(in_stock=True) ^ Q(category=None)),
        lambda: Product.objects.filter(id__lt=2**70),
        lambda: Note.objects.filter(owner=1),  # another model's queryset
    ],
)
def test_what_it_cannot_compare_exactly_is_left_to_sql(build):
    assert condition(build(), Product) is None


def test_a_deferred_column_is_left_to_sql(rows):
    _, products = rows
    tree = condition(Product.objects.filter(in_stock=True), Product)
    row = Product.objects.only("name").get(pk=products[0].pk)
    with pytest.raises(Unsupported):
        holds(tree, row)


def test_a_custom_integer_field_is_left_to_sql():
    user_model = get_user_model()
    # is_staff is a plain BooleanField: decided; a subclass might convert values
    assert condition(user_model.objects.filter(is_staff=True), user_model)
    from django.db import models

    class Flag(models.BooleanField):
        pass

    field = user_model._meta.get_field("is_staff")
    original = field.__class__
    field.__class__ = Flag
    try:
        assert condition(user_model.objects.filter(is_staff=True), user_model) is None
    finally:
        field.__class__ = original
