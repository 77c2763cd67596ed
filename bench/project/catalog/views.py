"""HTTP endpoints the load client uses to drive and observe the server."""

from __future__ import annotations

import time

from django.http import JsonResponse

from . import querycount
from .models import Product


def change(request):
    """Save one product with a new ``quantity``: the change the watchers wait for.

    Returns ``t_save``, the ``time.monotonic()`` just before ``save()`` (the clock is
    shared by every process of the machine), and the queries this view ran in its
    own thread.
    """
    pk = int(request.GET.get("pk", "1"))
    value = int(request.GET["value"])
    before = querycount.count_here()
    product = Product.objects.get(pk=pk)
    product.quantity = value
    started = time.monotonic()
    product.save()
    return JsonResponse(
        {"t_save": started, "queries": querycount.count_here() - before}
    )


async def queries(request):
    """How many queries the process has run (0 unless BENCH_COUNT_QUERIES is set)."""
    return JsonResponse({"queries": querycount.count()})
