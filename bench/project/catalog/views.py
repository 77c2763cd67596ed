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


def write(request):
    """Commit changes as fast as this thread can for ``seconds``: ``save()`` of
    products 1..``rows`` in turn, each in a transaction of its own (autocommit),
    change ``n`` setting ``quantity`` to ``base + n``.

    Returns ``times``, the ``time.monotonic()`` just after each ``save()`` returned
    (committed, its notification sent), so the client can tell when each change
    reached every watcher.
    """
    seconds = float(request.GET["seconds"])
    rows = int(request.GET["rows"])
    base = int(request.GET["base"])
    products = list(Product.objects.filter(pk__lte=rows).order_by("pk"))
    if len(products) != rows:
        return JsonResponse({"error": f"only {len(products)} products"}, status=400)
    times = []
    started = time.monotonic()
    deadline = started + seconds
    n = 0
    while True:
        product = products[n % rows]
        product.quantity = base + n
        product.save()
        now = time.monotonic()
        times.append(now)
        n += 1
        if now >= deadline:
            break
    return JsonResponse({"started": started, "times": times})
