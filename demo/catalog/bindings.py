"""The catalog over the websocket: `catalog.Category.*` and `catalog.Product.*`."""

from channels_binding.bindings import AsyncBinding

from .models import Category, Product


class CategoryBinding(AsyncBinding):
    model = Category
    fields = ["id", "name"]
    search_fields = ["name"]
    ordering_fields = ["name"]


class ProductBinding(AsyncBinding):
    model = Product
    fields = [
        "id",
        "name",
        "description",
        "price",
        "category",
        "in_stock",
        "created_at",
    ]
    search_fields = ["name", "description"]
    filter_fields = ["category", "in_stock"]
    ordering_fields = ["name", "price", "created_at"]
