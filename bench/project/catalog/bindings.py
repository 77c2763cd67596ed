"""The channels-binding side: discovered only when ``channels_binding`` is installed,
which the settings do for ``BENCH_STACK=binding`` alone."""

from channels_binding.bindings import AsyncBinding

from .models import Product
from .serializers import ProductSerializer


class ProductBinding(AsyncBinding):
    model = Product
    serializer_class = ProductSerializer
    # For bench.micro's ``watches`` case: what a client may watch costs every
    # change. The other cases and ``make bench`` neither search nor filter.
    search_fields = ["name", "description"]
    filter_fields = {
        "in_stock": ["exact"],
        "quantity": ["exact", "in", "lt", "gt"],
        "price": ["lt", "gt"],
        "name": ["icontains"],
    }
