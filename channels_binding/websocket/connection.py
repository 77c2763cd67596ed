"""What a websocket connection is, apart from its transport: its identity, its
groups and channels, and the events that address the connection itself (``ping``,
``connection``, ``authorize`` and the client relays ``notify.*``).

Both consumers mix this in; their own code is only the transport.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser
from rest_framework.exceptions import AuthenticationFailed

from .. import notify
from ..authentication import (
    SUBPROTOCOL,
    authenticate_again,
    authenticate_scope,
    authenticate_session,
    authenticate_token,
    offered_token,
)
from ..bindings import GenericBinding
from ..events import protocol
from ..events.protocol import CONNECTION_EVENTS, BadFrame, Frame
from ..events.request import BindingRequest
from ..exceptions import (
    APIException,
    NotAuthenticated,
    PermissionDenied,
    Throttled,
    UnknownEvent,
    ValidationError,
)
from ..live.groups import ALL, channel_group, user_group
from ..live.revocation import credential_digest, next_recheck
from ..permissions import CHANNEL_NAME
from ..registry import registry
from ..settings import binding_settings
from .throttling import ConnectionThrottle

logger = logging.getLogger("channels_binding")

#: Close code sent after accepting an anonymous handshake when
#: ``ANONYMOUS_CONNECTION_ALLOWED`` is False (4000 + HTTP 401).
CLOSE_NOT_AUTHENTICATED = 4401

RELAY_KINDS = {
    "notify.users": "users",
    "notify.channels": "channels",
    "notify.clients": "clients",
}
MAX_RELAY_TARGETS = 100


class ConnectionMixin:
    """Connection state and connection-level events, shared by both consumers.

    Each connection-level event is an ``async def event_<name>(frame)`` method
    returning the reply's data; ``connection_events`` maps event names to them.
    """

    connection_events = {
        name: "event_relay" if name in RELAY_KINDS else f"event_{name}"
        for name in CONNECTION_EVENTS
    }

    user: Any
    auth: Any
    hub: Any

    # -- handshake ---------------------------------------------------------------

    async def open_connection(self) -> tuple[bool, APIException | None]:
        """Authenticate the handshake. Returns ``(allowed, error)``: ``error`` is a
        rejected token (the connection then keeps the session's identity)."""
        self.client_id = await self.hub.add_client(self)
        self.channels: list[str] = []
        self.throttle = ConnectionThrottle(binding_settings.THROTTLE_RATES)
        error, token = None, offered_token(self.scope)
        try:
            self.user, self.auth = await authenticate_scope(self.scope)
        except APIException as exc:
            error, token = exc, None
            self.user, self.auth = await authenticate_session(self.scope)
        self.authenticated_by(token)
        allowed = bool(
            self.user.is_authenticated or binding_settings.ANONYMOUS_CONNECTION_ALLOWED
        )
        return allowed, error

    def accepted_subprotocol(self) -> str | None:
        return (
            SUBPROTOCOL if SUBPROTOCOL in self.scope.get("subprotocols", ()) else None
        )

    async def join_groups(self) -> list[str]:
        """Join the user's group, everyone's, and the ``?channel=`` channels the
        permission hook allows. Returns the refused channel names."""
        await self.hub.join(ALL, self)
        if self.user.is_authenticated:
            await self.hub.join(user_group(self.user.pk), self)
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        refused = []
        for name in dict.fromkeys(query.get("channel", [])):
            if await self.may_join(name):
                await self.hub.join(channel_group(name), self)
                self.channels.append(name)
            else:
                refused.append(name)
        return refused

    async def may_join(self, name: str) -> bool:
        if not CHANNEL_NAME.match(name):
            return False
        permission = binding_settings.CONNECTION_PERMISSION_CLASS()
        return await database_sync_to_async(permission.has_join_permission)(self, name)

    def greeting(self, auth_error: Any, refused: list[str]) -> list[dict]:
        """The frames sent once the connection is open."""
        frames = [protocol.reply("connection", self.connection_data())]
        if auth_error is not None:
            frames.append(protocol.error("authorize", auth_error))
        if refused:
            denied = PermissionDenied(f"Not allowed to join: {', '.join(refused)}.")
            frames.append(protocol.error("connection", denied))
        return frames

    def connection_data(self) -> dict[str, Any]:
        data = {
            "client_id": self.client_id,
            "user_id": self.user.pk if self.user.is_authenticated else None,
            "authenticated": bool(self.user.is_authenticated),
            "channels": list(self.channels),
        }
        replay = getattr(self, "replay", None)
        if replay is not None:
            window = binding_settings.RESUME_SECONDS
            data["resume"] = {"token": replay.token, "window": window}
        return data

    # -- frames ------------------------------------------------------------------

    def read_frame(self, text: str | None, data: bytes | None):
        """``(frame, None)`` for a frame to answer, or ``(None, message)`` with the
        error frame to send straight back (bad frame, or over a rate limit)."""
        try:
            frame = protocol.parse_frame(
                text, data, max_bytes=binding_settings.MAX_FRAME_BYTES
            )
        except BadFrame as bad:
            wait = self.throttle.wait(None) if self.throttle else None
            if wait is not None:
                exc = Throttled(math.ceil(wait))
                return None, protocol.error(bad.event, exc, bad.frame)
            return None, protocol.error(bad.event, bad.exc, bad.frame)
        if self.throttle:
            wait = self.throttle.wait(frame.event)
            if wait is not None:
                exc = Throttled(math.ceil(wait))
                return None, protocol.error(frame.event, exc, frame)
        return frame, None

    def is_connection_event(self, frame: Frame) -> bool:
        return frame.name in self.connection_events

    async def answer_connection_event(self, frame: Frame) -> list[dict]:
        """The reply (its event keeps the frame's ``#hash``), and after a
        successful ``authorize`` the new ``connection`` frame."""
        name = frame.name
        handler = getattr(self, self.connection_events[name])
        event = "pong" + frame.event[len(name) :] if name == "ping" else frame.event
        try:
            data = await handler(frame)
        except Exception as exc:
            return [protocol.error(frame.event, exc, frame)]
        messages = [protocol.reply(event, data, frame)]
        if name == "authorize":
            messages.append(protocol.reply("connection", self.connection_data()))
        return messages

    def binding_for(self, frame: Frame) -> GenericBinding:
        if self.revoked:
            raise NotAuthenticated("This connection's credentials were revoked.")
        request = BindingRequest.from_frame(
            frame, user=self.user, auth=self.auth, connection=self
        )
        return GenericBinding.for_request(request)

    # -- connection-level events -------------------------------------------------

    async def event_ping(self, frame: Frame) -> dict:
        return {}

    async def event_connection(self, frame: Frame) -> dict:
        return self.connection_data()

    async def event_authorize(self, frame: Frame) -> dict:
        """Change the connection's user: ``{"token": ...}``, or ``{}`` for
        anonymous. A rejected token leaves the identity as it was."""
        token = frame.data.get("token")
        if token is None or token == "":
            if not binding_settings.ANONYMOUS_CONNECTION_ALLOWED:
                raise PermissionDenied("Anonymous connections are not allowed.")
            user, auth = AnonymousUser(), None
        else:
            user, auth = await authenticate_token(token)
        await self.change_user(user, auth)
        self.authenticated_by(token or None)
        return self.connection_data()

    async def change_user(self, user: Any, auth: Any) -> None:
        """Move the connection's groups, channels and subscriptions to ``user``."""
        old = self.user
        self.user, self.auth = user, auth
        if old.pk != user.pk or old.is_authenticated != user.is_authenticated:
            if old.is_authenticated:
                await self.hub.leave(user_group(old.pk), self)
            if user.is_authenticated:
                await self.hub.join(user_group(user.pk), self)
        for name in list(self.channels):
            if not await self.may_join(name):
                self.channels.remove(name)
                await self.hub.leave(channel_group(name), self)
        await database_sync_to_async(self.drop_invisible_subscriptions)()

    def drop_invisible_subscriptions(self) -> None:
        """Forget subscriptions the connection's (new) user may not see."""
        for subscription in self.hub.index.for_consumer(self):
            action = "retrieve" if subscription.is_object else "list"
            request = BindingRequest(
                event=f"{subscription.stream}.{action}",
                stream=subscription.stream,
                action=action,
                user=self.user,
                auth=self.auth,
                connection=self,
            )
            try:
                binding = registry.get(subscription.stream)(request)
                binding.check_permissions()
                if subscription.is_object:
                    obj = binding.get_queryset().get(pk=subscription.pk)
                    binding.check_object_permissions(obj)
            except Exception:
                self.hub.index.remove(subscription)

    # -- revocation --------------------------------------------------------------

    #: Set when the identity was revoked: nothing more is pushed.
    revoked = False

    def revoke(self, message: dict) -> bool:
        """Called by the hub with a revoke message for this user's group: whether
        it is about this connection's identity (the session or token it names, if
        any). If it is, pushes stop now and the connection is closed or made
        anonymous soon after (``REVOKED_CONNECTIONS``)."""
        user = self.user
        if not user.is_authenticated or user_group(user.pk) != message.get("group"):
            return False
        session, token = message.get("session"), message.get("token")
        if session is not None:
            key = getattr((self.scope or {}).get("session"), "session_key", None)
            if self.auth is not None or not key or credential_digest(key) != session:
                return False
        if token is not None:
            key = getattr(self.auth, "key", None)
            if not isinstance(key, str) or credential_digest(key) != token:
                return False
        self._revoke()
        return True

    def _revoke(self) -> None:
        """Stop pushes now; close or downgrade soon after."""
        self.revoked = True
        self.recheck_at = None
        task = asyncio.get_running_loop().create_task(self._end_revoked())
        self._revoking = task  # keep a reference until it is done

    # -- periodic re-check of the credentials ------------------------------------

    #: The token the identity came from; ``None``: from the scope (the session).
    auth_token: str | None = None
    #: When the hub asks the credentials again (``time.monotonic()``), or ``None``.
    recheck_at: float | None = None

    def authenticated_by(self, token: str | None) -> None:
        """Remember the credentials of the identity just taken, to ask them again."""
        self.auth_token = token
        self.recheck_at = next_recheck() if self.user.is_authenticated else None

    async def recheck_identity(self) -> bool:
        """Ask the authentication classes again with the credentials this
        connection's identity came from (``AUTH_RECHECK_SECONDS``). If they are
        refused, or give nobody or another user, revoke the identity as a
        revocation does; returns whether it did."""
        user, token = self.user, self.auth_token
        try:
            fresh, auth = await authenticate_again(token, self.scope)
        except AuthenticationFailed:
            fresh, auth = None, None
        except Exception:
            # The database is down, say: ask again later rather than end every
            # connection of the process.
            logger.warning("Could not check a connection's credentials", exc_info=1)
            self.recheck_at = next_recheck()
            return False
        if self.revoked or self.user is not user or self.auth_token != token:
            return False  # revoked, or authorized again, meanwhile
        if fresh is None or not fresh.is_authenticated or fresh.pk != user.pk:
            self._revoke()
            return True
        # The same user, as it is now (a changed ``is_staff`` counts from now on).
        self.user, self.auth = fresh, auth
        self.recheck_at = next_recheck()
        return False

    async def _end_revoked(self) -> None:
        try:
            downgrade = (
                binding_settings.REVOKED_CONNECTIONS == "downgrade"
                and binding_settings.ANONYMOUS_CONNECTION_ALLOWED
            )
            if downgrade:
                await self.change_user(AnonymousUser(), None)
                self.revoked = False
                self.queue_reply(protocol.reply("connection", self.connection_data()))
            else:
                await self.close_revoked()
        except Exception:
            logger.debug("Ending a revoked connection failed", exc_info=True)

    async def event_resume(self, frame: Frame) -> dict:
        """Carry on a closed connection of the same user: ``{"token", "pos"}``,
        the token of its ``connection`` frame and the last ``pos`` received.

        On success the frames pushed after ``pos`` are sent first, then the reply
        ``{"resumed": true, "token", "pos"}``: the old connection's subscriptions,
        groups and client id are this one's from then on. Otherwise (resume off,
        unknown or expired token, another user, frames no longer kept) the reply
        is ``{"resumed": false}`` and the client reads what it watches again."""
        token, pos = frame.data.get("token"), frame.data.get("pos", 0)
        if not isinstance(token, str) or len(token) > 200:
            raise ValidationError({"token": ["A string is required."]})
        if isinstance(pos, bool) or not isinstance(pos, int) or pos < 0:
            raise ValidationError({"pos": ["A non-negative integer is required."]})
        replay = getattr(self, "replay", None)
        if replay is None:
            return {"resumed": False}
        if getattr(self, "resumed", False) or self.hub.index.for_consumer(self):
            raise ValidationError(
                {"token": ["Resume before subscribing to anything on this connection."]}
            )
        user = self.user

        def same(old: Any) -> bool:
            return (old.user.is_authenticated, old.user.pk) == (
                user.is_authenticated,
                user.pk,
            )

        old = self.hub.parked.get(token)
        if old is None or not same(old):
            return {"resumed": False}
        missed = old.replay.since(pos)
        if missed is None:
            # Too much was missed: the client reads again, so nothing is kept.
            del self.hub.parked[token]
            await self.hub.release(old)
            return {"resumed": False}
        # From here to the reply nothing awaits: no push can come in between.
        self.hub.claim(token, self, same)
        old.forward = self
        self.replay = old.replay
        for text in missed:
            self.outbox.put(text)
        self.resumed = True
        return {"resumed": True, "token": self.replay.token, "pos": self.replay.pos}

    async def event_relay(self, frame: Frame) -> dict:
        """``notify.users|channels|clients`` from a client, when
        ``CLIENT_NOTIFICATIONS`` is on: every target must pass the connection
        permission hook, or nothing is sent."""
        if not binding_settings.CLIENT_NOTIFICATIONS:
            raise UnknownEvent(f"Unknown event {frame.event!r}.")
        if not self.user.is_authenticated:
            raise NotAuthenticated()
        kind = RELAY_KINDS[frame.name]
        targets, payload = frame.data.get("targets"), frame.data.get("data")
        if (
            not isinstance(targets, list)
            or not 0 < len(targets) <= MAX_RELAY_TARGETS
            or not all(
                isinstance(t, str | int) and not isinstance(t, bool) for t in targets
            )
        ):
            raise ValidationError(
                {"targets": [f"A list of 1 to {MAX_RELAY_TARGETS} ids or names."]}
            )
        if "data" not in frame.data:
            raise ValidationError({"data": ["This field is required."]})
        if _looks_like_a_server_event(payload):
            raise ValidationError(
                {"data": ["A relayed event must not look like a server event."]}
            )
        permission = binding_settings.CONNECTION_PERMISSION_CLASS()
        for target in targets:
            allowed = await database_sync_to_async(permission.has_relay_permission)(
                self, kind, target
            )
            if not allowed:
                raise PermissionDenied(f"Not allowed to notify {kind[:-1]} {target!r}.")
        sender = {"user_id": self.user.pk, "client_id": self.client_id}
        send = {
            "users": notify.ausers,
            "channels": notify.achannels,
            "clients": notify.aclients,
        }[kind]
        try:
            count = await send(targets, payload, sender=sender)
        except ValueError as exc:
            raise ValidationError({"targets": [str(exc)]}) from None
        return {"sent": count}


def _looks_like_a_server_event(payload: Any) -> bool:
    """Whether relayed ``data`` names an event recipients would take for the
    server's own: a binding's event (a push) or a connection-level one."""
    if not isinstance(payload, dict) or not isinstance(payload.get("event"), str):
        return False
    base = payload["event"].partition("#")[0]
    stream = base.rpartition(".")[0]
    return (
        base in ConnectionMixin.connection_events
        or base == "pong"
        or base in registry
        or stream in registry
    )
