"""Who may join a named channel, and who may relay a notification to whom.

Binding events use Django REST framework permission classes; these two questions
are about the connection itself. Set ``CHANNELS_BINDING["CONNECTION_PERMISSION_CLASS"]``
to a subclass of :class:`ConnectionPermission` to change the answers. Its methods run
in a worker thread, so they may use the ORM.
"""

from __future__ import annotations

import re
from typing import Any

from .settings import binding_settings

#: How ``bindings`` and ``bindings --asyncapi`` write DRF's composed permissions.
OPERATORS = {"AND": "&", "OR": "|"}

#: Channel names: what a group name can carry, short enough to log.
CHANNEL_NAME = re.compile(r"^[A-Za-z0-9_\-.:]{1,64}$")


class ConnectionPermission:
    """The default ``CONNECTION_PERMISSION_CLASS``. ``connection`` is the
    websocket consumer: ``connection.user``, ``connection.channels`` (the names it
    has joined)."""

    def has_join_permission(self, connection: Any, channel: str) -> bool:
        """May this connection join ``channel`` (``?channel=<name>`` at connect)?

        By default any authenticated user may join any channel and anonymous
        connections may join none.
        """
        return bool(connection.user.is_authenticated)

    def has_relay_permission(self, connection: Any, kind: str, target: Any) -> bool:
        """May this connection relay a notification to ``target``?

        ``kind`` is ``"users"`` (target: a user pk), ``"channels"`` (a channel name)
        or ``"clients"`` (a client id). Relays exist only when
        ``CLIENT_NOTIFICATIONS`` is on, and never for anonymous connections. By
        default an authenticated user may notify any user or client, and only the
        channels it has joined.
        """
        if kind == "channels":
            return target in connection.channels
        return True


def event_permission_classes(binding: type, handler_name: str) -> list:
    """The permission classes of one event of a binding class, in the order of
    precedence of ``GenericBinding.get_permissions()``."""
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


def permission_name(permission: Any) -> str:
    """A permission class's dotted path; DRF's composed permissions
    (``IsAuthenticated & IsAdminUser``, ``~IsAdminUser``) are written out."""
    operator = getattr(permission, "operator_class", None)
    if operator is not None and hasattr(permission, "op2_class"):
        symbol = OPERATORS.get(operator.__name__, operator.__name__)
        first = permission_name(permission.op1_class)
        second = permission_name(permission.op2_class)
        return f"({first} {symbol} {second})"
    if operator is not None and hasattr(permission, "op1_class"):
        return f"~{permission_name(permission.op1_class)}"
    qualname = getattr(permission, "__qualname__", None)
    if qualname is None:
        return repr(permission)
    return f"{permission.__module__}.{qualname}"
