"""Create the benchmark database: ``python -m bench.project.prepare`` with
``BENCH_DB`` set. Migrates every app and adds ``BENCH_PRODUCTS`` products."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.project.settings")
os.environ["BENCH_STACK"] = "binding"  # the stack with every app installed
django.setup()

from django.core.management import call_command  # noqa: E402

from bench.project.catalog.models import Product  # noqa: E402

call_command("migrate", verbosity=0, interactive=False)
Product.objects.bulk_create(
    Product(
        name=f"Product {n}",
        description="A product of the benchmark, with a short description.",
        price=f"{n % 97 + 1}.50",
        quantity=n,
    )
    for n in range(1, int(os.environ.get("BENCH_PRODUCTS", "100")) + 1)
)
