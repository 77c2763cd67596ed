"""Create the benchmark database: ``python -m bench.project.prepare`` with
``BENCH_DB`` set. Migrates every app, adds ``BENCH_PRODUCTS`` products and
``BENCH_USERS`` users, each logged in: user *n*'s session key is
:func:`bench.client.session_key` of *n*, which the load client sends as its
``sessionid`` cookie."""

import os
from datetime import timedelta

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.project.settings")
os.environ["BENCH_STACK"] = "binding"  # the stack with every app installed
django.setup()

from django.contrib.auth import (  # noqa: E402
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
)
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.contrib.sessions.models import Session  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.client import session_key  # noqa: E402
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
users = get_user_model().objects.bulk_create(
    get_user_model()(username=f"user{n}", password=make_password(None))
    for n in range(1, int(os.environ.get("BENCH_USERS", "0")) + 1)
)
store, expires = SessionStore(), timezone.now() + timedelta(days=1)
Session.objects.bulk_create(
    Session(
        session_key=session_key(user.pk),
        session_data=store.encode(
            {
                SESSION_KEY: str(user.pk),
                BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
                HASH_SESSION_KEY: user.get_session_auth_hash(),
            }
        ),
        expire_date=expires,
    )
    for user in users
)
