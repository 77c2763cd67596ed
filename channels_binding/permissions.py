"""Who may join a named channel, and who may relay a notification to whom.

Binding events use Django REST framework permission classes; these two questions
are about the connection itself. Set ``CHANNELS_BINDING["CONNECTION_PERMISSION_CLASS"]``
to a subclass of :class:`ConnectionPermission` to change the answers. Its methods run
in a worker thread, so they may use the ORM.
"""

from __future__ import annotations

import re
from typing import Any

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
