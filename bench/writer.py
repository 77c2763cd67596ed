"""A writer process of the sustained-changes section: ``python -m bench.writer
<json options>`` with the bench project's environment (``BENCH_DB``,
``BENCH_REDIS_URL``, ``BENCH_STACK=binding``).

It is what a production deployment's other processes are (a worker, a management
command, another web process): it sets Django up with the library installed,
prints ``ready``, waits for ``go <seconds>`` on stdin, and then, for that long,
saves products picked at random from its own share of the rows (``writer`` of
``writers``: the pks ``p`` with ``(p - 1) % writers == writer``, so each row has
one writer and its quantities only grow), each ``save()`` in a transaction of its
own, through the library's normal capture (its ``post_save`` receiver, the message
sent through the Redis layer on commit), at ``rate`` saves per second if given
(on a fixed schedule: a late save is followed by the next at once), else as fast
as it can. Prints one JSON object: per commit the
``time.monotonic()`` just after ``save()`` returned, its pk and its quantity.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time

import django


def main() -> None:
    opts = json.loads(sys.argv[1])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.project.settings")
    django.setup()

    from bench.project.catalog.models import Product

    rows, writers, writer = opts["rows"], opts["writers"], opts["writer"]
    base = opts["base"]
    pks = [p for p in range(1, rows + 1) if (p - 1) % writers == writer]
    products = {p.pk: p for p in Product.objects.filter(pk__in=pks)}
    if len(products) != len(pks):
        raise SystemExit(f"only {len(products)} of {len(pks)} products")
    # The first save sets up the channel layer's connection, before the clock runs.
    first = products[pks[0]]
    first.save()
    pick = random.Random(opts.get("seed", writer)).choice
    print("ready", flush=True)
    command = sys.stdin.readline().split()
    if not command or command[0] != "go":
        raise SystemExit(f"expected go, got {command!r}")
    seconds = float(command[1])
    interval = 1.0 / opts["rate"] if opts.get("rate") else 0.0
    times, keys, values = [], [], []
    started = time.monotonic()
    deadline = started + seconds
    n = 0
    while True:
        if interval:
            delay = started + n * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        pk = pick(pks)
        product = products[pk]
        value = base + n
        product.quantity = value
        product.save()
        now = time.monotonic()
        times.append(now)
        keys.append(pk)
        values.append(value)
        n += 1
        if now >= deadline:
            break
    json.dump(
        {"started": started, "times": times, "pks": keys, "values": values}, sys.stdout
    )


if __name__ == "__main__":
    main()
