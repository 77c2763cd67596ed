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
"""

from __future__ import annotations

import argparse
import contextvars
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


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
        import bench.project.prepare  # noqa: F401  (migrates and adds the products)

        rows = measure(args)
    width = max(len(name) for name, *_ in rows)
    print(f"{'case':<{width}}  {'ours':>10}  {'baseline':>10}  ratio  baseline is")
    for name, ours, base, what in rows:
        print(
            f"{name:<{width}}  {ours:>10}  {base:>10}  {base_ratio(ours, base)}  {what}"
        )
    ratios = " ".join(f"{name}={base_ratio(o, b).strip()}" for name, o, b, _ in rows)
    print(f"ratios (baseline time / ours): {ratios}")
    return 0


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
    return rows


if __name__ == "__main__":
    sys.exit(main())
