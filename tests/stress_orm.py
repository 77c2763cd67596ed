"""The stress harness's data and its ORM writer (see tests/stress.py).

Run with the server settings (``DJANGO_SETTINGS_MODULE=tests.server_settings``)::

    python -m tests.stress_orm setup --seed 1
        migrates the database, creates the users (with tokens), categories, tags,
        products and notes of a run and prints them as JSON;
    python -m tests.stress_orm write --seed 1 --count 500 --rate 100 --log ops.jsonl
        writes through the ORM, as a management command or a Celery task would, in a
        process of its own: saves, deletes, transactions rolled back,
        ``QuerySet.update()`` followed by ``announce()``, rows moving out of and into
        filters, notes changing owners. It prints ``ready``, starts on a line of
        input, and prints its counts as JSON.

:class:`OrmWriter` is also run inside a server process by tests.stress_bindings,
for the in-memory channel layer, which reaches no other process.

Nothing here imports Django at module level, so the harness can import the word
lists and field makers.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from decimal import Decimal

COLORS = ["red", "blue", "green", "amber", "ivory"]
NOUNS = ["pen", "cup", "lamp", "desk", "sock", "kite"]
DESCRIPTIONS = ["", "plain", "a lamp for the desk", "blue ink", "red wine", "green tea"]
CATEGORIES = ["Office", "Kitchen", "Garden", "Toys"]
TAGS = ["new", "sale", "eco", "gift", "bulk"]
NOTE_USERS = ["alice", "bob", "carol"]
#: Written only by transactions that roll back: no frame may ever show it.
ROLLED_BACK = "rolled back"
WRITER = "writer"

#: How many rows the writers keep: every watched collection fits in one page.
PRODUCTS = (30, 90)  # (fewest, most); the run starts with 60
NOTES_PER_USER = (4, 40)  # the run starts with 14 each


def product_name(rng: random.Random) -> str:
    return f"{rng.choice(COLORS)} {rng.choice(NOUNS)}"


def product_price(rng: random.Random) -> str:
    # Around the watched bounds (lt 30, lt/gt 50, gt 20), so rows cross them.
    return f"{rng.uniform(1, 99):.2f}"


def product_fields(rng: random.Random, categories: list[int], full: bool = True):
    """Fields of a product as a websocket or HTTP client sends them; ``full=False``
    picks one to three of them (a partial update)."""
    fields = {
        "name": product_name(rng),
        "description": rng.choice(DESCRIPTIONS),
        "price": product_price(rng),
        "in_stock": rng.random() < 0.6,
        "category_id": rng.choice([*categories, None]),
        "tags": rng.sample(TAGS, rng.randint(0, 2)),
    }
    if full:
        return fields
    keys = rng.sample(sorted(fields), rng.randint(1, 3))
    return {key: fields[key] for key in keys}


def note_text(rng: random.Random) -> str:
    return f"note {rng.randrange(10**6)}"


def setup(seed: int) -> dict:
    """Migrate the database and create a run's data; return what the harness needs
    to know of it."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from tests.shop.models import Category, Note, Product, Tag

    call_command("migrate", interactive=False, verbosity=0)
    with connection.cursor() as cursor:
        # Readers do not block the writer (several processes share the file); the
        # mode is kept in the file.
        cursor.execute("PRAGMA journal_mode=WAL")
    rng = random.Random(f"setup-{seed}")
    users, tokens = {}, {}
    for name in [WRITER, *NOTE_USERS]:
        user = get_user_model().objects.create_user(name, password="pw")
        users[name] = user.pk
        tokens[name] = Token.objects.create(user=user).key
    categories = [Category.objects.create(name=name).pk for name in CATEGORIES]
    for name in TAGS:
        Tag.objects.create(name=name)
    products = []
    for _ in range(60):
        fields = product_fields(rng, categories)
        tags = fields.pop("tags")
        product = Product.objects.create(
            **{**fields, "price": Decimal(fields["price"])}
        )
        product.tags.set(Tag.objects.filter(name__in=tags))
        products.append(product.pk)
    notes = {}
    for name in NOTE_USERS:
        notes[name] = [
            Note.objects.create(owner_id=users[name], text=note_text(rng)).pk
            for _ in range(14)
        ]
    return {
        "users": users,
        "tokens": tokens,
        "categories": categories,
        "products": products,
        "notes": notes,
    }


class Rollback(Exception):
    """Raised inside ``transaction.atomic()`` to roll it back."""


class Gone(Exception):
    """The rows picked were deleted by another writer in the meantime."""


class OrmWriter:
    """Random writes through the ORM; :meth:`step` makes one and names it."""

    WEIGHTS = {
        "save": 18,
        "create": 8,
        "delete": 7,
        "queryset_delete": 2,
        "atomic_saves": 7,
        "rolled_back": 10,
        "update_announce": 11,
        "update_announce_atomic": 4,
        "update_announce_rolled_back": 3,
        "category_rename_announce": 2,
        "tags": 5,
        "note_move": 10,
        "note_update_announce": 3,
        "note_save": 5,
        "note_create": 4,
        "note_delete": 4,
    }

    def __init__(self, seed: int) -> None:
        from django.contrib.auth import get_user_model

        from tests.shop.models import Category, Tag

        self.rng = random.Random(f"orm-{seed}")
        self.categories = list(Category.objects.values_list("pk", flat=True))
        self.tags = {tag.name: tag for tag in Tag.objects.all()}
        self.owners = list(
            get_user_model()
            .objects.filter(username__in=NOTE_USERS)
            .values_list("pk", flat=True)
        )
        self.log: list[dict] = []
        self.counts: Counter = Counter()

    # -- picking ---------------------------------------------------------------

    def _products(self) -> list[int]:
        from tests.shop.models import Product

        return list(Product.objects.values_list("pk", flat=True))

    def _pick(self, model):
        """A random row of ``model``; :class:`Gone` when other writers keep
        deleting what this one picks."""
        for _ in range(5):
            pks = list(model.objects.values_list("pk", flat=True))
            row = model.objects.filter(pk=self.rng.choice(pks)).first() if pks else None
            if row is not None:
                return row
        raise Gone

    def _product(self):
        from tests.shop.models import Product

        return self._pick(Product)

    def _note(self):
        from tests.shop.models import Note

        return self._pick(Note)

    def _mutate(self, product) -> None:
        fields = product_fields(self.rng, self.categories, full=False)
        fields.pop("tags", None)
        for key, value in fields.items():
            setattr(product, key, Decimal(value) if key == "price" else value)

    def _new_product(self):
        from tests.shop.models import Product

        fields = product_fields(self.rng, self.categories)
        fields.pop("tags")
        return Product.objects.create(**{**fields, "price": Decimal(fields["price"])})

    def _record(self, op: str, stream: str, pks) -> None:
        self.log.append({"t": time.time(), "op": op, "stream": stream, "pks": pks})

    # -- writing ---------------------------------------------------------------

    def step(self) -> str:
        """One random write (or rolled-back transaction); returns its name."""
        from django.db import DatabaseError

        op = self.rng.choices(list(self.WEIGHTS), list(self.WEIGHTS.values()))[0]
        op = self._bounded(op)
        try:
            getattr(self, f"_op_{op}")()
        except Gone:
            self.counts["gone"] += 1
            return "gone"
        except DatabaseError as exc:  # "database is locked" under contention
            self.counts["error"] += 1
            self._record(f"error:{op}:{exc}", "", [])
            return "error"
        self.counts[op] += 1
        return op

    def _bounded(self, op: str) -> str:
        from tests.shop.models import Note, Product

        if op in ("create", "delete", "queryset_delete"):
            count = Product.objects.count()
            if count >= PRODUCTS[1]:
                return "delete"
            if count <= PRODUCTS[0]:
                return "create"
        if op in ("note_create", "note_delete", "note_move"):
            counts = Counter(Note.objects.values_list("owner_id", flat=True))
            if (
                op == "note_create"
                and max(counts.values(), default=0) >= (NOTES_PER_USER[1])
            ):
                return "note_delete"
            if (
                op != "note_create"
                and min(counts.get(owner, 0) for owner in self.owners)
                <= (NOTES_PER_USER[0])
            ):
                return "note_create"
        return op

    def _op_save(self) -> None:
        product = self._product()
        self._mutate(product)
        product.save()  # re-creates the row if another writer just deleted it
        self._record("save", "shop.Product", [product.pk])

    def _op_create(self) -> None:
        product = self._new_product()
        self._record("create", "shop.Product", [product.pk])

    def _op_delete(self) -> None:
        product = self._product()
        pk = product.pk
        product.delete()
        self._record("delete", "shop.Product", [pk])

    def _op_queryset_delete(self) -> None:
        from tests.shop.models import Product

        pks = self.rng.sample(self._products(), 2)
        Product.objects.filter(pk__in=pks).delete()  # post_delete for each row
        self._record("queryset_delete", "shop.Product", pks)

    def _op_atomic_saves(self) -> None:
        from django.db import transaction

        with transaction.atomic():
            pks = []
            for _ in range(self.rng.randint(2, 3)):
                product = self._product()
                self._mutate(product)
                product.save()
                pks.append(product.pk)
        self._record("atomic_saves", "shop.Product", pks)

    def _op_rolled_back(self) -> None:
        """Saves, a create, a delete, an update with its announce and a note
        moved, all rolled back: nothing may be pushed, and no frame may ever show
        :data:`ROLLED_BACK`."""
        from django.db import transaction

        from channels_binding.live import announce
        from tests.shop.models import Product

        try:
            with transaction.atomic():
                product = self._product()
                self._mutate(product)
                product.description = ROLLED_BACK
                product.save()
                created = self._new_product()
                created.name = ROLLED_BACK
                created.save()
                self._product().delete()
                Product.objects.filter(pk=self._product().pk).update(name=ROLLED_BACK)
                announce(Product.objects.filter(name=ROLLED_BACK))
                note = self._note()
                note.text = ROLLED_BACK
                note.owner_id = self.rng.choice(self.owners)
                note.save()
                raise Rollback
        except Rollback:
            pass
        self._record("rolled_back", "", [])

    def _update(self, pks: list[int]):
        """``QuerySet.update()`` of some products: no signal."""
        from tests.shop.models import Product

        changes = self.rng.choice(
            [
                {"in_stock": self.rng.random() < 0.5},
                {"price": Decimal(product_price(self.rng))},
                {"category_id": self.rng.choice([*self.categories, None])},
                {"name": product_name(self.rng)},
            ]
        )
        Product.objects.filter(pk__in=pks).update(**changes)
        return Product.objects.filter(pk__in=pks)

    def _sample_products(self) -> list[int]:
        pks = self._products()
        return self.rng.sample(pks, min(len(pks), self.rng.randint(2, 6)))

    def _op_update_announce(self) -> None:
        from channels_binding.live import announce

        pks = self._sample_products()
        announce(self._update(pks))
        self._record("update_announce", "shop.Product", pks)

    def _op_update_announce_atomic(self) -> None:
        from django.db import transaction

        from channels_binding.live import announce
        from tests.shop.models import Product

        pks = self._sample_products()
        with transaction.atomic():
            announce(self._update(pks))
            announce(Product, pks[:1])  # announced twice in one transaction
        self._record("update_announce_atomic", "shop.Product", pks)

    def _op_update_announce_rolled_back(self) -> None:
        from django.db import transaction

        from channels_binding.live import announce
        from tests.shop.models import Product

        try:
            with transaction.atomic():
                pks = self._sample_products()
                Product.objects.filter(pk__in=pks).update(name=ROLLED_BACK)
                announce(Product.objects.filter(pk__in=pks))
                raise Rollback
        except Rollback:
            pass
        self._record("update_announce_rolled_back", "", [])

    def _op_category_rename_announce(self) -> None:
        """A related row changes: the products showing it are announced."""
        from channels_binding.live import announce
        from tests.shop.models import Category, Product

        category = Category.objects.get(pk=self.rng.choice(self.categories))
        category.name = f"{category.name.split()[0]} {self.rng.randrange(1000)}"
        category.save()
        products = Product.objects.filter(category=category)
        announce(products)
        pks = list(products.values_list("pk", flat=True))
        self._record("category_rename_announce", "shop.Product", pks)

    def _op_tags(self) -> None:
        product = self._product()
        names = self.rng.sample(sorted(self.tags), self.rng.randint(0, 3))
        product.tags.set([self.tags[name] for name in names])  # m2m_changed
        self._record("tags", "shop.Product", [product.pk])

    def _op_note_move(self) -> None:
        note = self._note()
        note.owner_id = self.rng.choice([o for o in self.owners if o != note.owner_id])
        note.save()
        self._record("note_move", "shop.Note", [note.pk])

    def _op_note_update_announce(self) -> None:
        from channels_binding.live import announce
        from tests.shop.models import Note

        pks = list(Note.objects.values_list("pk", flat=True))
        pks = self.rng.sample(pks, min(len(pks), 3))
        Note.objects.filter(pk__in=pks).update(owner_id=self.rng.choice(self.owners))
        announce(Note, pks)
        self._record("note_update_announce", "shop.Note", pks)

    def _op_note_save(self) -> None:
        note = self._note()
        note.text = note_text(self.rng)
        note.save()
        self._record("note_save", "shop.Note", [note.pk])

    def _op_note_create(self) -> None:
        from tests.shop.models import Note

        note = Note.objects.create(
            owner_id=self.rng.choice(self.owners), text=note_text(self.rng)
        )
        self._record("note_create", "shop.Note", [note.pk])

    def _op_note_delete(self) -> None:
        note = self._note()
        pk = note.pk
        note.delete()
        self._record("note_delete", "shop.Note", [pk])


def write(seed: int, count: int, rate: float, log_path: str | None) -> dict:
    writer = OrmWriter(seed)
    # Ready: the harness starts every writer at once by sending a line.
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()
    start = time.monotonic()
    for index in range(count):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        writer.step()
    if log_path:
        with open(log_path, "w") as log:
            for entry in writer.log:
                log.write(json.dumps(entry) + "\n")
    return {
        "writes": count,
        "seconds": round(time.monotonic() - start, 2),
        "ops": dict(writer.counts),
    }


def main(argv: list[str] | None = None) -> None:
    import django

    parser = argparse.ArgumentParser(prog="python -m tests.stress_orm")
    parser.add_argument("command", choices=["setup", "write"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--log")
    args = parser.parse_args(argv)
    django.setup()
    if args.command == "setup":
        result = setup(args.seed)
    else:
        result = write(args.seed, args.count, args.rate, args.log)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
