from __future__ import annotations

from django.core.management.base import BaseCommand

from channels_binding.bindings import GenericBinding
from channels_binding.registry import registry
from channels_binding.settings import binding_settings

OPERATORS = {"AND": "&", "OR": "|"}


def _name(permission) -> str:
    """A permission class's dotted path; DRF's composed permissions
    (``IsAuthenticated & IsAdminUser``, ``~IsAdminUser``) are written out."""
    operator = getattr(permission, "operator_class", None)
    if operator is not None and hasattr(permission, "op2_class"):
        symbol = OPERATORS.get(operator.__name__, operator.__name__)
        first, second = _name(permission.op1_class), _name(permission.op2_class)
        return f"({first} {symbol} {second})"
    if operator is not None and hasattr(permission, "op1_class"):
        return f"~{_name(permission.op1_class)}"
    qualname = getattr(permission, "__qualname__", None)
    if qualname is None:
        return repr(permission)
    return f"{permission.__module__}.{qualname}"


def _names(classes) -> str:
    return ", ".join(_name(c) for c in classes)


def _permissions(binding: type[GenericBinding], handler_name: str) -> list:
    handler = getattr(binding, handler_name)
    action_name = getattr(handler, "binding_event", handler_name)
    for classes in (
        getattr(handler, "binding_permission_classes", None),
        binding.permission_classes_by_action.get(action_name),
        binding.permission_classes,
    ):
        if classes is not None:
            return list(classes)
    return list(binding_settings.DEFAULT_PERMISSION_CLASSES)


class Command(BaseCommand):
    help = "List every stream, the events it answers and their permission classes."

    def handle(self, *args, **options) -> None:
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
                permissions = _names(_permissions(binding, handler_name))
                self.stdout.write(f"  {binding.stream}.{name}  [{permissions}]")
