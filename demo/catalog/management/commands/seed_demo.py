"""Fill the demo database with a small catalog, a few users and their notes.

Safe to run any number of times: existing rows are left as they are.
"""

from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from rest_framework.authtoken.models import Token

from catalog.models import Category, Note, Product

CATALOG = {
    "Books": [
        ("Two Scoops of Django", "Django best practices.", "39.95"),
        ("Fluent Python", "Clear, concise and effective programming.", "54.99"),
        ("Designing Data-Intensive Applications", "Reliable systems.", "45.50"),
        ("The Pragmatic Programmer", "Your journey to mastery.", "42.00"),
        ("Architecture Patterns with Python", "TDD, DDD, events.", "48.90"),
        ("High Performance Browser Networking", "TCP, TLS, WebSocket.", "35.00"),
        ("Test-Driven Development with Python", "Obey the testing goat.", "39.00"),
        ("Refactoring", "Improving the design of existing code.", "47.25"),
        ("Release It!", "Design and deploy production-ready software.", "41.80"),
        ("Python Cookbook", "Recipes for mastering Python 3.", "44.10"),
    ],
    "Coffee": [
        ("Ethiopia Yirgacheffe", "Washed, floral, bergamot and lemon.", "14.50"),
        ("Colombia Huila", "Caramel, red apple and cocoa.", "12.90"),
        ("Kenya Nyeri AA", "Blackcurrant and grapefruit, juicy body.", "16.20"),
        ("Brazil Cerrado", "Nutty and chocolatey, low acidity.", "10.80"),
        ("Guatemala Antigua", "Cocoa, spice and a smoky finish.", "13.40"),
        ("Sumatra Mandheling", "Earthy, herbal, heavy body.", "13.10"),
        ("Costa Rica Tarrazu", "Honey processed, bright and sweet.", "15.00"),
        ("Rwanda Huye", "Red berries and black tea.", "15.60"),
        ("Decaf Mexico", "Swiss water decaf, milk chocolate.", "12.30"),
        ("House Espresso Blend", "Dark chocolate and hazelnut.", "11.70"),
    ],
    "Tools": [
        ("Pour-over Kettle", "Gooseneck kettle, 1 litre.", "39.00"),
        ("Burr Grinder", "Conical burrs, 40 grind settings.", "129.00"),
        ("Digital Scale", "0.1 g precision with timer.", "24.99"),
        ("French Press", "Borosilicate glass, 8 cups.", "29.50"),
        ("AeroPress", "Fast, clean, portable brewing.", "34.95"),
        ("Paper Filters", "Pack of 100, size 02.", "6.50"),
        ("Milk Frother", "Handheld, battery powered.", "12.00"),
        ("Cold Brew Jar", "1.5 litre with a steel filter.", "27.80"),
        ("Travel Mug", "Insulated, 350 ml, leak-proof lid.", "21.00"),
        ("Espresso Tamper", "58 mm stainless steel base.", "18.40"),
    ],
}

# (username, password, is_staff)
USERS = [("alice", "demo", False), ("bob", "demo", False), ("admin", "admin", True)]

# Private notes: each user sees only their own on the Notes page.
NOTES = {
    "alice": ["Order more Kenya Nyeri AA", "Call the roaster about the grinder"],
    "bob": ["Restock paper filters", "Try the AeroPress recipe"],
}


class Command(BaseCommand):
    help = (
        "Create the demo catalog, the users alice/demo, bob/demo, admin/admin and "
        "a few private notes."
    )

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        created_products = 0
        for index, (category_name, products) in enumerate(CATALOG.items()):
            category, _ = Category.objects.get_or_create(name=category_name)
            for position, (name, description, price) in enumerate(products):
                _, created = Product.objects.get_or_create(
                    name=name,
                    defaults={
                        "description": description,
                        "price": Decimal(price),
                        "category": category,
                        # A few out-of-stock items, so the in_stock filter shows a
                        # difference.
                        "in_stock": (index + position) % 4 != 0,
                    },
                )
                created_products += created

        User = get_user_model()
        for username, password, is_staff in USERS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={"is_staff": is_staff, "is_superuser": is_staff},
            )
            if created:
                user.set_password(password)
                user.save(update_fields=["password"])
            token, _ = Token.objects.get_or_create(user=user)
            for text in NOTES.get(username, []):
                Note.objects.get_or_create(owner=user, text=text)
            self.stdout.write(
                f"user {username!r} (password {password!r}) token {token}"
            )

        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready: {Category.objects.count()} categories, "
                f"{Product.objects.count()} products ({created_products} new), "
                f"{Note.objects.count()} notes."
            )
        )
