"""Reading a list costs a constant number of queries, however many rows.

The binding runs synchronously here (``binding.run()``, what a worker thread runs
for a websocket frame) so the queries happen on this thread's connection, where
they can be counted: the statements that read, not those of the read
transaction around a page (``BEGIN``, ``COMMIT``, savepoints).
"""

import contextlib

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from channels_binding.bindings import AsyncBinding, GenericBinding
from channels_binding.events.request import BindingRequest
from channels_binding.registry import registry
from tests.shop.models import Category, Product, Tag

pytestmark = pytest.mark.django_db

TRANSACTION = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK", "BEGIN", "COMMIT")


@contextlib.contextmanager
def reads(expected):
    with CaptureQueriesContext(connection) as captured:
        yield
    sql = [q["sql"] for q in captured if not q["sql"].startswith(TRANSACTION)]
    assert len(sql) == expected, sql


def run(event, data, user=None):
    stream, _, action = event.rpartition(".")
    request = BindingRequest(
        event=event, stream=stream, action=action, data=data, user=user
    )
    return GenericBinding.for_request(request).run()


def make_products(count):
    tags = [Tag.objects.create(name=f"tag{i}") for i in range(3)]
    for i in range(count):
        category = Category.objects.create(name=f"category {i}")
        product = Product.objects.create(name=f"p{i}", price=i, category=category)
        product.tags.set(tags[: i % 4])


@pytest.mark.parametrize("rows", [10, 100])
def test_list_with_nested_foreign_key_and_many_to_many(rows):
    make_products(rows)
    # count, one page with the category joined, one prefetch of the tags
    with reads(3):
        page = run("shop.Product.list", {"limit": 100})
    assert page["count"] == rows
    assert len(page["rows"]) == rows
    assert page["rows"][1]["category"] == {"id": 2, "name": "category 1"}
    assert page["rows"][1]["tags"] == ["tag0"]


def test_search_is_constant_too():
    make_products(60)
    with reads(3):
        page = run("shop.Product.search", {"query": "p", "limit": 50})
    assert page["count"] == 60 and len(page["rows"]) == 50


def test_auto_built_serializer_reads_foreign_keys_without_queries():
    class PlainProducts(AsyncBinding):
        model = Product
        stream = "shop.plain"
        fields = ["id", "name", "category", "tags"]

    try:
        make_products(40)
        # count, page (category is read as its *_id column), tags prefetch
        with reads(3):
            page = run("shop.plain.list", {"limit": 40})
        assert page["rows"][3]["category"] == 4
        assert sorted(page["rows"][3]["tags"]) == [1, 2, 3]
    finally:
        registry.unregister("shop.plain")


def test_explicit_hooks_replace_the_derived_ones():
    class NoJoins(AsyncBinding):
        model = Product
        stream = "shop.nojoins"
        serializer_class = registry.get("shop.Product").serializer_class
        select_related = ()
        prefetch_related = ()

    try:
        make_products(5)
        # with the joins turned off, every row reads its category and tags
        with reads(2 + 5 * 2):
            run("shop.nojoins.list", {})
    finally:
        registry.unregister("shop.nojoins")
