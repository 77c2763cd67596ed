"""Ending what an identity may do on open sockets, in every process.

When a user is deactivated or deleted, changes password, logs a session out, or a
token is deleted, a revoke message goes to the user's group (``cb.u.<pk>``); every
hub with a local connection of that user hands it to the connection, which stops
sending pushes at once and is then closed (4401) or made anonymous, as
``REVOKED_CONNECTIONS`` says. The message names the session or token it is about,
if any: logging out one session ends the connections of that session only.

:func:`disconnect_user` does the same from application code.

Credentials can also end with no signal: a JWT's ``exp`` passes, a token row is
changed by ``QuerySet.update()``. So every ``AUTH_RECHECK_SECONDS`` each hub asks
the authentication classes again about its connections (one timer per hub, see
``Hub._recheck_loop``), and a connection whose credentials no longer give its
identity is revoked the same way.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model, user_logged_out
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from ..settings import binding_settings
from .groups import REVOKE_MESSAGE, user_group

logger = logging.getLogger("channels_binding")

#: How many times per ``AUTH_RECHECK_SECONDS`` a hub looks for connections due.
RECHECK_TICKS = 10


def next_recheck() -> float | None:
    """When credentials checked now are due again (``time.monotonic()``), or
    ``None`` if never: at a random point of the period's second-to-last tenth, so
    that connections opened together are spread, and the hub's next look finds
    them within the period."""
    period = binding_settings.AUTH_RECHECK_SECONDS
    if not period:
        return None
    early = 1 - 2 / RECHECK_TICKS
    return time.monotonic() + period * random.uniform(early, early + 1 / RECHECK_TICKS)


def credential_digest(key: str) -> str:
    """How a token or session key is named on the layer: never the key itself."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def revoke_message(user_pk: Any, session: str | None = None, token: str | None = None):
    return {
        "type": REVOKE_MESSAGE,
        "group": user_group(user_pk),
        "session": credential_digest(session) if session else None,
        "token": credential_digest(token) if token else None,
    }


async def adisconnect_user(user_or_pk: Any) -> None:
    """Close (or make anonymous, per ``REVOKED_CONNECTIONS``) every open connection
    of this user, in every process, at once."""
    pk = getattr(user_or_pk, "pk", user_or_pk)
    layer = get_channel_layer()
    if layer is None:
        logger.warning("disconnect_user(%r): no channel layer to reach sockets", pk)
        return
    await layer.group_send(user_group(pk), revoke_message(pk))


def disconnect_user(user_or_pk: Any) -> None:
    """:func:`adisconnect_user` for synchronous code; inside a transaction it waits
    for the commit."""
    pk = getattr(user_or_pk, "pk", user_or_pk)
    _send_on_commit(revoke_message(pk))


def _send_on_commit(message: dict) -> None:
    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            async_to_sync(layer.group_send)(message["group"], message)
        except Exception:
            logger.exception("Could not send a revocation to %s", message["group"])

    transaction.on_commit(send)


# -- signals --------------------------------------------------------------------


def _on_user_saved(sender, instance, created=False, raw=False, **kwargs) -> None:
    if created or raw:
        return
    # ``set_password()`` keeps the raw password in ``_password`` until the save
    # is done, so a changed password is seen here.
    if not getattr(instance, "is_active", True) or getattr(instance, "_password", None):
        _send_on_commit(revoke_message(instance.pk))


def _on_user_deleted(sender, instance, **kwargs) -> None:
    _send_on_commit(revoke_message(instance.pk))


def _on_logged_out(sender, request=None, user=None, **kwargs) -> None:
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None)
    if user is not None and key:
        _send_on_commit(revoke_message(user.pk, session=key))


def _on_token_deleted(sender, instance, **kwargs) -> None:
    _send_on_commit(revoke_message(instance.user_id, token=instance.key))


def connect_signals() -> None:
    user_model = get_user_model()
    uid = "channels_binding.revoke"
    post_save.connect(_on_user_saved, sender=user_model, dispatch_uid=uid + ".save")
    post_delete.connect(
        _on_user_deleted, sender=user_model, dispatch_uid=uid + ".delete"
    )
    user_logged_out.connect(_on_logged_out, dispatch_uid=uid + ".logout")
    try:
        from rest_framework.authtoken.models import Token
    except (ImportError, RuntimeError):  # authtoken is optional (not installed)
        return
    post_delete.connect(_on_token_deleted, sender=Token, dispatch_uid=uid + ".token")
