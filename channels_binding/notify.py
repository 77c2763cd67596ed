"""Server-side notifications to users, named channels, single clients or everyone.

Usable from anywhere in the project, in any process that shares the channel layer::

    from channels_binding import notify

    notify.users([request.user], {"message": "Your export is ready."})
    notify.channels(["room.42"], {"event": "chat.message", "data": {"text": "hi"}})
    notify.clients([client_id], {"progress": 80})
    notify.all({"message": "Maintenance at 18:00."})

Recipients receive ``{"event": "notify", "data": data}``; when ``data`` carries its
own ``"event"``, they receive that event with ``data["data"]`` (or the rest of
``data``). The plain functions are for synchronous code (views, Celery tasks,
management commands); in async code await ``ausers``, ``achannels``, ``aclients``
and ``aall``. The frame is encoded to JSON once, here, whatever the number of
recipients; data that is not JSON raises ``TypeError`` at the call.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer, get_channel_layer

from .events import protocol
from .live.groups import (
    ALL,
    DIRECT_MESSAGE,
    GROUP_MESSAGE,
    channel_group,
    give_hubs_capacity,
    user_group,
)
from .settings import binding_settings

logger = logging.getLogger("channels_binding")

__all__ = [
    "aall",
    "achannels",
    "aclients",
    "all",
    "ausers",
    "channels",
    "clients",
    "frame",
    "users",
]


#: The JSON text recipients get for ``data``: :func:`.events.protocol.notification`.
frame = protocol.notification


def _layer() -> Any:
    """The channel layer, sending to hubs with their own capacity, as change
    messages do (a process that only notifies would otherwise use the layer's
    default of 100 messages, and a burst would be dropped)."""
    layer = get_channel_layer()
    if layer is not None:
        give_hubs_capacity(layer, binding_settings.HUB_CAPACITY)
    return layer


async def _to_groups(groups: Iterable[str], text: str) -> int:
    layer = _layer()
    if layer is None:
        return 0
    count = 0
    for group in dict.fromkeys(groups):
        await layer.group_send(
            group, {"type": GROUP_MESSAGE, "group": group, "text": text}
        )
        count += 1
    return count


def _pk(user: Any) -> Any:
    return getattr(user, "pk", user)


async def ausers(users: Iterable[Any], data: Any, *, sender: dict | None = None) -> int:
    """Every connection of these users (instances or primary keys)."""
    text = frame(data, sender)
    return await _to_groups((user_group(_pk(user)) for user in users), text)


async def achannels(
    names: Iterable[str], data: Any, *, sender: dict | None = None
) -> int:
    """Every connection that joined one of these channels."""
    text = frame(data, sender)
    return await _to_groups((channel_group(str(name)) for name in names), text)


async def aclients(
    client_ids: Iterable[str], data: Any, *, sender: dict | None = None
) -> int:
    """These connections (the ``client_id`` of their ``connection`` frame).

    A client id that is not a valid one raises ``ValueError``; one whose connection
    has closed is passed over.
    """
    text = frame(data, sender)
    layer = _layer()
    if layer is None:
        return 0
    ids = list(dict.fromkeys(client_ids))
    hubs = [_hub_channel(client_id) for client_id in ids]
    sent = 0
    for client_id, hub in zip(ids, hubs, strict=True):
        message = {"type": DIRECT_MESSAGE, "client": client_id, "text": text}
        try:
            await layer.send(hub, message)
            sent += 1
        except ChannelFull:
            logger.warning("The hub of %s is not reading; notification dropped", hub)
    return sent


#: Checks channel names by Channels' rules, whatever the layer (not every layer
#: checks names: channels_redis' pub/sub layer does not). ``valid_channel_names``
#: is the check that Channels 4.1 to 4.3 all have, without a deprecation warning.
_NAMES = BaseChannelLayer()


def _hub_channel(client_id: Any) -> str:
    """The channel of the hub that serves ``client_id`` (``<hub channel>.<local>``)."""
    if isinstance(client_id, str):
        hub, dot, local = client_id.rpartition(".")
        if dot and local.isalnum():
            try:
                if _NAMES.valid_channel_names([hub]):
                    return hub
            except TypeError:
                pass
    raise ValueError(f"{client_id!r} is not a client id.")


async def aall(data: Any) -> int:
    """Every connection of every server process."""
    return await _to_groups([ALL], frame(data))


def users(users: Iterable[Any], data: Any) -> int:
    """Every connection of these users (instances or primary keys); returns the
    number of users sent to (0 without a channel layer). :func:`ausers` for
    async code."""
    return async_to_sync(ausers)(list(users), data)


def channels(names: Iterable[str], data: Any) -> int:
    """Every connection that joined one of these named channels; returns the
    number of channels sent to (0 without a channel layer).
    :func:`achannels` for async code."""
    return async_to_sync(achannels)(list(names), data)


def clients(client_ids: Iterable[str], data: Any) -> int:
    """These connections, by the ``client_id`` of their ``connection`` frame;
    returns the number of client ids sent to (0 without a channel layer).
    :func:`aclients` for async code."""
    return async_to_sync(aclients)(list(client_ids), data)


def all(data: Any) -> int:  # noqa: A001 - the public name is fixed
    """Every connection of every server process; returns 1 (0 without a channel
    layer). :func:`aall` for async code."""
    return async_to_sync(aall)(data)
