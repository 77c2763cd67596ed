"""The channels-binding side: discovered only when ``channels_binding`` is installed,
which the settings do for ``BENCH_STACK=binding`` alone."""

from channels_binding.bindings import AsyncBinding

from .models import Product
from .serializers import ProductSerializer


class ProductBinding(AsyncBinding):
    model = Product
    serializer_class = ProductSerializer
