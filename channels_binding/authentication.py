"""Who is on the other end of a websocket.

An authentication class has one method, ``async authenticate(scope)``, returning
``(user, auth)`` or ``None`` to let the next class try. The classes listed in
``CHANNELS_BINDING["AUTHENTICATION_CLASSES"]`` are tried in order at connect; when
none answers, the connection is anonymous.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser

from .settings import binding_settings


class BaseAuthentication:
    """Subclass this and implement :meth:`authenticate`."""

    async def authenticate(self, scope: dict[str, Any]) -> tuple[Any, Any] | None:
        raise NotImplementedError(".authenticate() must be overridden.")


class ScopeUserAuthentication(BaseAuthentication):
    """The user that Channels' ``AuthMiddlewareStack`` put in ``scope["user"]``
    (the Django session's user)."""

    async def authenticate(self, scope: dict[str, Any]) -> tuple[Any, Any] | None:
        user = scope.get("user")
        if user is not None and user.is_authenticated:
            return user, None
        return None


async def authenticate_scope(scope: dict[str, Any]) -> tuple[Any, Any]:
    for auth_class in binding_settings.AUTHENTICATION_CLASSES:
        result = await auth_class().authenticate(scope)
        if result is not None:
            return result
    return AnonymousUser(), None
