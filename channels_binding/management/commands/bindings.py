from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from channels_binding.asyncapi import document
from channels_binding.permissions import event_permission_classes, permission_name
from channels_binding.registry import registry


class Command(BaseCommand):
    help = (
        "List every stream, the events it answers and their permission classes; "
        "with --asyncapi, print the AsyncAPI 3.0 document of the websocket instead."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--asyncapi",
            action="store_true",
            help="Print an AsyncAPI 3.0 JSON document of every stream's events.",
        )

    def handle(self, *args, **options) -> None:
        if options["asyncapi"]:
            self.stdout.write(json.dumps(document(), indent=2))
            return
        bindings = list(registry)
        if not bindings:
            self.stdout.write("No bindings are registered.")
            return
        for binding in bindings:
            path = f"{binding.__module__}.{binding.__qualname__}"
            self.stdout.write(
                self.style.MIGRATE_HEADING(binding.stream) + f"  ({path})"
            )
            for name, handler_name in sorted(binding.events.items()):
                classes = event_permission_classes(binding, handler_name)
                permissions = ", ".join(permission_name(c) for c in classes)
                self.stdout.write(f"  {binding.stream}.{name}  [{permissions}]")
