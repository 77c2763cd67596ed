"""In-process timings behind docs/benchmarks.rst: ``python -m bench.micro``.

No server and no socket: each case times one piece of channels-binding's work
in this process, on the benchmark's database (a fresh SQLite file), next to a
baseline timed in the same run, and prints the ratio. Each figure is the median
of ``--rounds`` rounds of a bounded loop.

``serializer``  reading one product: channels-binding's ``read_serializer``
                (fields built once per class) vs ``ProductSerializer(obj).data``.
``retrieve``    17 retrieves answered in one database-thread trip (``run_batch``:
                one ``pk__in`` query) vs the hand-written consumer's work for each
                (``ProductSerializer(Product.objects.get(pk=pk)).data``).
``fanout``      computing the pushes of one change for 1,000 watchers of the row,
                each checked (``compute_pushes``), vs the floor of a fan-out
                without checks: serializing once and building each frame.
``distinct``    the same for 1,000 watchers of ``catalog.UserProduct`` (a
                per-user ``get_queryset()``), each logged in as a user of its
                own (1,000 visibility keys), vs all as one user: the ratio is
                what 999 more keys cost (section 9 of ``make bench``).

Then one more figure, not a speed-up but a bound: ``watches``, what one
connection holding every watch the per-connection limits allow (with the
default settings) adds to the cost of a change, for the 1,000 watchers above
plus a list watcher. It prints the time with that connection over the time
without it, for the costliest of a few ways to fill the limits, and fails (exit
status 1) if it is over :data:`MAX_WATCH_COST` with 1,000 watchers.
"""

from __future__ import annotations

import argparse
import contextvars
import gc
import os
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

#: The most one connection at every default limit may multiply a change's cost by.
MAX_WATCH_COST = 2.0


def timed(fn, count: int, rounds: int) -> float:
    """Median seconds per call of ``fn`` over ``rounds`` rounds of ``count`` calls."""
    results = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(count):
            fn()
        results.append((time.perf_counter() - start) / count)
    return statistics.median(results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.micro")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--watchers", type=int, default=1000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cb-micro-") as workdir:
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench.project.settings"
        os.environ["BENCH_DB"] = str(Path(workdir) / "micro.sqlite3")
        os.environ["BENCH_PRODUCTS"] = "50"
        os.environ["BENCH_USERS"] = str(args.watchers)
        import bench.project.prepare  # noqa: F401  (migrates and adds the products)

        rows = measure(args)
        watch_cost, watch_line = measure_watches(args)
    width = max(len(name) for name, *_ in rows)
    print(f"{'case':<{width}}  {'ours':>10}  {'baseline':>10}  ratio  baseline is")
    for name, ours, base, what in rows:
        print(
            f"{name:<{width}}  {ours:>10}  {base:>10}  {base_ratio(ours, base)}  {what}"
        )
    print(watch_line)
    ratios = " ".join(f"{name}={base_ratio(o, b).strip()}" for name, o, b, _ in rows)
    print(f"ratios (baseline time / ours): {ratios}")
    checked = args.watchers >= 1000
    return 1 if checked and watch_cost > MAX_WATCH_COST else 0


def base_ratio(ours: str, base: str) -> str:
    return f"{float(base.split()[0]) / float(ours.split()[0]):5.2f}"


def measure(args: argparse.Namespace) -> list[tuple[str, str, str, str]]:
    from django.contrib.auth.models import AnonymousUser

    from bench.project.catalog.models import Product
    from bench.project.catalog.serializers import ProductSerializer
    from channels_binding.bindings import GenericBinding
    from channels_binding.events.batching import run_batch
    from channels_binding.events.protocol import encode
    from channels_binding.events.request import BindingRequest
    from channels_binding.live.pushes import _frame, compute_pushes
    from channels_binding.live.subscriptions import Subscription, SubscriptionIndex
    from channels_binding.serializers import read_serializer

    rows = []
    product = Product.objects.get(pk=1)

    def drf():
        return ProductSerializer(product, context={}).data

    def ours():
        return read_serializer(ProductSerializer, product, {}).data

    assert drf() == ours()
    rows.append(
        (
            "serializer",
            f"{timed(ours, 2000, args.rounds) * 1e6:.1f} us",
            f"{timed(drf, 2000, args.rounds) * 1e6:.1f} us",
            "ProductSerializer(obj).data",
        )
    )

    pks = list(range(1, 18))

    def binding(pk: int) -> Any:
        request = BindingRequest(
            event="catalog.Product.retrieve",
            stream="catalog.Product",
            action="retrieve",
            data={"id": pk},
            user=AnonymousUser(),
        )
        return GenericBinding.for_request(request)

    def batch():
        context = contextvars.copy_context()
        outcomes = run_batch([(binding(pk), context) for pk in pks])
        assert all(ok for ok, _ in outcomes)
        return outcomes

    def hand():
        return [ProductSerializer(Product.objects.get(pk=pk)).data for pk in pks]

    assert [value for _, value in batch()] == hand()
    rows.append(
        (
            "retrieve",
            f"{timed(batch, 50, args.rounds) / len(pks) * 1e6:.1f} us",
            f"{timed(hand, 50, args.rounds) / len(pks) * 1e6:.1f} us",
            "get() + serializer, per request",
        )
    )

    class Watcher:
        def __init__(self) -> None:
            self.user = AnonymousUser()
            self.auth = None

    index = SubscriptionIndex()
    for _ in range(args.watchers):
        index.add(Subscription(Watcher(), "catalog.Product", None, pk=product.pk))

    def fanout():
        frames = compute_pushes(index, "catalog.Product", [product.pk])
        assert len(frames) == args.watchers
        return frames

    def floor():
        data = encode(ProductSerializer(Product.objects.get(pk=product.pk)).data)
        return [_frame("catalog.Product.retrieve", data) for _ in range(args.watchers)]

    rows.append(
        (
            "fanout",
            f"{timed(fanout, 10, args.rounds) * 1e3:.2f} ms",
            f"{timed(floor, 10, args.rounds) * 1e3:.2f} ms",
            f"one serialization, {args.watchers} frames, no checks",
        )
    )

    from django.contrib.auth import get_user_model

    import bench.project.catalog.peruser  # noqa: F401  (registers the binding)

    people = list(get_user_model().objects.order_by("pk")[: args.watchers])

    def watched_by(users: list) -> Any:
        index = SubscriptionIndex()
        for user in users:
            watcher = Watcher()
            watcher.user = user
            index.add(Subscription(watcher, "catalog.UserProduct", None, pk=1))
        return index

    each, one = watched_by(people), watched_by([people[0]] * len(people))

    def distinct(index: Any) -> Any:
        frames = compute_pushes(index, "catalog.UserProduct", [1])
        assert len(frames) == len(people)
        return frames

    rows.append(
        (
            "distinct",
            f"{timed(partial(distinct, each), 5, args.rounds) * 1e3:.2f} ms",
            f"{timed(partial(distinct, one), 5, args.rounds) * 1e3:.2f} ms",
            f"the same {len(people)} watchers, logged in as one user",
        )
    )
    return rows


def measure_watches(args: argparse.Namespace) -> tuple[float, str]:
    """``(ratio, line)``: one change's ``compute_pushes`` with one connection
    holding the most the limits allow, over the same without it."""
    from django.contrib.auth.models import AnonymousUser

    from bench.project.catalog.bindings import ProductBinding
    from bench.project.catalog.models import Product
    from channels_binding.events.request import BindingRequest
    from channels_binding.exceptions import APIException
    from channels_binding.filters import value_length
    from channels_binding.live.pushes import compute_pushes
    from channels_binding.live.subscriptions import Subscription, SubscriptionIndex
    from channels_binding.settings import binding_settings as limits

    stream = "catalog.Product"
    product = Product.objects.get(pk=1)

    class Watcher:
        def __init__(self, user: Any) -> None:
            self.user = user
            self.auth = None

    class Member:  # an authenticated user: the higher watch limit
        is_authenticated = True
        is_anonymous = False
        is_active = True

        def __init__(self, pk: int) -> None:
            self.pk = pk

    def add(index: Any, sub: Any) -> bool:
        """Subscribe as a request would: validated first, then within limits."""
        try:
            if not sub.is_object:
                data = {"filters": sub.filters, "query": sub.query}
                request = BindingRequest(
                    event=f"{stream}.subscribe",
                    stream=stream,
                    action="subscribe",
                    data=data,
                    user=sub.consumer.user,
                )
                binding = ProductBinding(request)
                binding.filter_queryset(binding.get_queryset())
            return index.add(sub, limits.MAX_SUBSCRIPTIONS)[1]
        except APIException:
            return False

    others = [Watcher(AnonymousUser()) for _ in range(args.watchers)]
    lister = Watcher(Member(2))

    def index_of_others() -> Any:
        index = SubscriptionIndex()
        for watcher in others:
            index.add(Subscription(watcher, stream, None, pk=product.pk))
        index.add(Subscription(lister, stream, "all", filters={}))
        return index

    value = limits.MAX_FILTER_VALUE_LENGTH

    def longest(n: int) -> list[int]:
        """The longest list that starts with ``n``: one-digit numbers after it."""
        items = [n]
        while value_length(items) + 2 <= value:
            items.append(len(items) % 9 + 1)
        return items

    def shape(name: str, n: int, words: int) -> tuple[dict, str | None]:
        """Watch number ``n`` of a way to spend the lookups."""
        if name == "filters":  # three filters at their longest values
            return {
                "quantity__in": longest(n),
                "name__icontains": f"{n}".ljust(value, "y"),
                "price__lt": n,
            }, None
        if name == "lists":  # the longest list
            return {"quantity__in": longest(n)}, None
        if name == "mixed":  # a word of search and a long filter
            return {"quantity__in": longest(n)}, f"w{n}"
        if name == "search":  # as many words as fit, at the longest query
            width = (limits.MAX_QUERY_LENGTH + 1) // words - 1
            return {}, " ".join(f"{n}.{t}".ljust(width, "z") for t in range(words))
        return {"quantity": n}, None  # one filter: the cheapest distinct watch

    def fill(index: Any, name: str) -> tuple[int, int]:
        """Give one new connection every watch of shape ``name`` the limits
        allow, then cheaper ones while any fits, then as many subscriptions to
        the changed row as the bytes left allow."""
        attacker = Watcher(Member(3))
        watches, words = 0, 16
        for n in range(1000):
            while words:
                filters, query = shape(name, n, words)
                sub = Subscription(attacker, stream, f"w{n}", None, filters, query)
                if add(index, sub):
                    watches += 1
                    break
                words = words - 1 if name == "search" else 0
            if not words:
                break
        for n in range(1000, 2000):
            filters, query = shape("one filter", n, 0)
            if not add(index, Subscription(attacker, stream, f"w{n}", None, filters)):
                break
            watches += 1
        extra = 0
        while add(index, Subscription(attacker, stream, f"o{extra}", pk=product.pk)):
            extra += 1
        return watches, extra

    quiet = index_of_others()
    worst = (0.0, "", 0, 0)
    for name in ("filters", "lists", "mixed", "search", "one filter"):
        busy = index_of_others()
        watches, extra = fill(busy, name)
        for index in (quiet, busy):  # the first push records what each saw
            compute_pushes(index, stream, [product.pk])
        # Timed in turns, so that whatever else the machine does weighs on both.
        ratios = []
        for _ in range(args.rounds):
            gc.collect()
            held = timed(partial(compute_pushes, busy, stream, [product.pk]), 5, 1)
            gc.collect()
            alone = timed(partial(compute_pushes, quiet, stream, [product.pk]), 5, 1)
            ratios.append(held / alone)
        ratio = statistics.median(ratios)
        if ratio > worst[0]:
            worst = (ratio, name, watches, extra)
    ratio, name, watches, extra = worst
    verdict = f"at most {MAX_WATCH_COST:.1f}" if args.watchers >= 1000 else "unchecked"
    line = (
        f"watches: one change for {args.watchers} watchers and a list watcher, "
        f"plus one connection at every limit ({name!r}: {watches} collection "
        f"watches, {extra} more subscriptions) / without it: {ratio:.2f} ({verdict})"
    )
    return ratio, line


if __name__ == "__main__":
    sys.exit(main())
