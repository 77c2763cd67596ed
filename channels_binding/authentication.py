"""Who is on the other end of a websocket.

An authentication class answers two questions, each with ``(user, auth)``, ``None``
("not mine, ask the next class") or by raising ``AuthenticationFailed`` ("mine, and
wrong"):

* ``async authenticate(scope)``: at the handshake, from the connection's scope;
* ``async authenticate_token(token)``: for a token a client offered, in the
  handshake (``Authorization`` header, ``?token=``, or the ``token.<key>``
  subprotocol) or later in an ``authorize`` event.

The classes of ``CHANNELS_BINDING["AUTHENTICATION_CLASSES"]`` are asked in order. A
token that no class accepts is an error, never a quiet fall-back to anonymous.

Every ``AUTH_RECHECK_SECONDS`` an open connection's credentials are asked again
(:func:`authenticate_again`), so that one that expired or was withdrawn without a
signal (a JWT's ``exp``, a token row changed by ``QuerySet.update()``) ends the
connection as a revocation does.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any
from urllib.parse import parse_qs

from channels.auth import get_user
from channels.db import database_sync_to_async
from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.utils.functional import LazyObject, empty
from rest_framework.exceptions import AuthenticationFailed

from .settings import binding_settings

#: The subprotocol a browser offers beside ``token.<key>``, and that is accepted.
SUBPROTOCOL = "channels-binding"
TOKEN_SUBPROTOCOL_PREFIX = "token."
KEYWORDS = ("token", "bearer")


class BaseAuthentication:
    """Subclass this; implement one or both methods."""

    async def authenticate(self, scope: dict[str, Any]) -> tuple[Any, Any] | None:
        """``(user, auth)`` for the handshake's scope, ``None`` to let the next
        class try, or raise ``AuthenticationFailed``. Runs on the event loop."""
        return None

    async def authenticate_token(self, token: str) -> tuple[Any, Any] | None:
        """``(user, auth)`` for a token offered in the handshake or with
        ``authorize``, ``None`` if it is not this class's kind of token, or raise
        ``AuthenticationFailed``. Runs on the event loop."""
        return None


class ScopeUserAuthentication(BaseAuthentication):
    """The user that Channels' ``AuthMiddlewareStack`` put in ``scope["user"]``
    (the Django session's user)."""

    async def authenticate(self, scope: dict[str, Any]) -> tuple[Any, Any] | None:
        user = scope.get("user")
        if user is not None and user.is_authenticated:
            # The user itself, not Channels' lazy wrapper (evaluated by now):
            # every attribute read through the wrapper costs a call, and
            # ``filter(owner=user)`` reads several (a third of its time).
            wrapped = getattr(user, "_wrapped", None)
            if isinstance(user, LazyObject) and wrapped is not empty:
                user = wrapped
            return user, None
        return None


class TokenAuthentication(BaseAuthentication):
    """Django REST framework's ``Token`` (``rest_framework.authtoken``).

    Sent as ``Authorization: Token <key>`` (or ``Bearer <key>``), as ``?token=<key>``,
    as the subprotocol ``token.<key>``, or in ``{"event": "authorize", "data":
    {"token": "<key>"}}``.
    """

    async def authenticate_token(self, token: str) -> tuple[Any, Any] | None:
        return await database_sync_to_async(self._lookup)(token)

    def _lookup(self, key: str) -> tuple[Any, Any] | None:
        if not apps.is_installed("rest_framework.authtoken"):
            return None
        # Imported here: the model exists only where rest_framework.authtoken is
        # installed, which is optional.
        from rest_framework.authtoken.models import Token

        try:
            token = Token.objects.select_related("user").get(key=key)
        except (Token.DoesNotExist, ValueError):
            return None  # maybe another class's token (a JWT)
        if not token.user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        return token.user, token


class JWTAuthentication(BaseAuthentication):
    """A JSON Web Token of ``djangorestframework-simplejwt`` (optional extra)."""

    async def authenticate_token(self, token: str) -> tuple[Any, Any] | None:
        if token.count(".") != 2:
            return None  # not a JWT: let another class try
        return await database_sync_to_async(self._validate)(token)

    def _validate(self, raw: str) -> tuple[Any, Any]:
        # Imported here: djangorestframework-simplejwt is an optional extra.
        from rest_framework_simplejwt.authentication import JWTAuthentication as JWT
        from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

        jwt = JWT()
        try:
            validated = jwt.get_validated_token(raw.encode())
            return jwt.get_user(validated), validated
        except (InvalidToken, TokenError, AuthenticationFailed):
            raise AuthenticationFailed("Invalid token.") from None


def offered_token(scope: dict[str, Any]) -> str | None:
    """The token a client offered in its handshake, if any."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"authorization":
            parts = value.decode("latin-1").split()
            if len(parts) == 2 and parts[0].lower() in KEYWORDS:
                return parts[1]
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token"):
        return query["token"][0]
    for protocol in scope.get("subprotocols", ()):
        if protocol.startswith(TOKEN_SUBPROTOCOL_PREFIX):
            return protocol[len(TOKEN_SUBPROTOCOL_PREFIX) :]
    return None


def _classes() -> list[BaseAuthentication]:
    return [auth_class() for auth_class in binding_settings.AUTHENTICATION_CLASSES]


async def authenticate_token(token: Any) -> tuple[Any, Any]:
    """``(user, auth)`` for a token, or ``AuthenticationFailed``."""
    if not isinstance(token, str) or not token or len(token) > 4096:
        raise AuthenticationFailed("Invalid token.")
    for auth in _classes():
        result = await auth.authenticate_token(token)
        if result is not None:
            return result
    raise AuthenticationFailed("Invalid token.")


async def authenticate_session(scope: dict[str, Any]) -> tuple[Any, Any]:
    """The identity the scope gives without any token: session user or anonymous."""
    for auth in _classes():
        result = await auth.authenticate(scope)
        if result is not None:
            return result
    return AnonymousUser(), None


async def authenticate_scope(scope: dict[str, Any]) -> tuple[Any, Any]:
    """The handshake's identity: an offered token first, else the session."""
    token = offered_token(scope)
    if token is not None:
        return await authenticate_token(token)
    return await authenticate_session(scope)


async def authenticate_again(token: str | None, scope: dict[str, Any]):
    """``(user, auth)`` that a connection's credentials give now, or
    ``AuthenticationFailed``: its token asked again, or else its scope as a new
    handshake with the same session cookie would make it."""
    if token is not None:
        return await authenticate_token(token)
    return await authenticate_session(await _session_read_again(scope))


async def _session_read_again(scope: dict[str, Any]) -> dict[str, Any]:
    """The scope with its session read again from the session store, and its user
    from that, as ``AuthMiddlewareStack`` does at a handshake: a session logged
    out, expired or of a changed password gives no user. A scope without a session
    is returned as it is."""
    key = getattr(scope.get("session"), "session_key", None)
    if not key or "user" not in scope:
        return scope
    engine = import_module(settings.SESSION_ENGINE)
    fresh = {**scope, "session": engine.SessionStore(session_key=key)}
    fresh["user"] = await get_user(fresh)
    return fresh
