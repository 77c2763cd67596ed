"""Credentials that end without a signal end the connection: every
``AUTH_RECHECK_SECONDS`` each open connection's token, or session, is asked again,
and one that no longer gives its identity is closed (4401) or downgraded, like a
revocation (tests/test_revocation.py)."""

import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.checks import run_checks
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed

from channels_binding.authentication import BaseAuthentication
from tests.shop.models import Product
from tests.test_identity import session_cookie
from tests.test_revocation import ROOT, client, closed_within, orm, rename, watching

pytestmark = pytest.mark.django_db(transaction=True)

PERIOD = 0.3
#: What a revocation itself may take once the re-check found it.
SLACK = 0.5


class ExpiringTokens(BaseAuthentication):
    """``exp:<unix time>:<username>``, accepted until that time, as a JWT is until
    its ``exp``."""

    async def authenticate_token(self, token):
        if not token.startswith("exp:"):
            return None
        _, when, username = token.split(":", 2)
        if time.time() >= float(when):
            raise AuthenticationFailed("Token expired.")
        user = await orm(get_user_model().objects.get, username=username)
        return user, token


def rechecking(**extra):
    classes = [
        "channels_binding.authentication.ScopeUserAuthentication",
        "channels_binding.authentication.TokenAuthentication",
        "channels_binding.authentication.JWTAuthentication",
        "tests.test_recheck.ExpiringTokens",
    ]
    return override_settings(
        CHANNELS_BINDING={
            **ROOT,
            "AUTHENTICATION_CLASSES": classes,
            "AUTH_RECHECK_SECONDS": PERIOD,
            **extra,
        }
    )


def expiring(user, seconds):
    expires = time.time() + seconds
    return f"exp:{expires}:{user.username}", expires


async def closed_by(ws, deadline):
    """The close code, if the socket closed by ``deadline`` (``time.time()``)."""
    return await closed_within(ws, max(deadline - time.time(), 0.01))


@pytest.mark.parametrize("path", ["/ws/", "/ws/sync/"])
async def test_an_expired_token_closes_the_socket_within_the_period(user, path):
    product = await orm(Product.objects.create, name="Pen", price=1)
    token, expires = expiring(user, 1.0)
    with rechecking():
        async with client(f"{path}?token={token}") as ws:
            assert ws.connection["user_id"] == user.pk
            await watching(ws, product)
            assert await closed_by(ws, expires + PERIOD + SLACK) == 4401
            assert time.time() >= expires  # not before
            await orm(rename, product.pk)
            assert await ws.receive_nothing(0.3)


async def test_downgrade_sends_an_anonymous_connection_frame(user):
    token, expires = expiring(user, 1.0)
    with rechecking(REVOKED_CONNECTIONS="downgrade"):
        async with client() as ws:
            reply = await ws.request("authorize", {"token": token})
            assert reply["data"]["user_id"] == user.pk
            assert (await ws.receive_json_from(1))["data"]["user_id"] == user.pk
            frame = await ws.receive_json_from(expires + PERIOD + SLACK - time.time())
            assert time.time() >= expires
            assert frame["event"] == "connection"
            assert frame["data"]["authenticated"] is False
            assert frame["data"]["user_id"] is None
            reply = await ws.request("tools.whoami")
            assert reply["data"]["user_id"] is None


async def test_valid_credentials_stay_connected_across_periods(user):
    product = await orm(Product.objects.create, name="Pen", price=1)
    cookie = await orm(session_cookie, user)
    drf_token = (await orm(Token.objects.create, user=user)).key
    token, _ = expiring(user, 3600)
    with rechecking():
        async with (
            client(headers=[cookie]) as by_session,
            client(f"/ws/?token={drf_token}") as by_drf_token,
            client(f"/ws/?token={token}") as by_expiring_token,
        ):
            sockets = [by_session, by_drf_token, by_expiring_token]
            for ws in sockets:
                await watching(ws, product)
            assert all([await ws.receive_nothing(PERIOD * 5) for ws in sockets])
            await orm(rename, product.pk)
            for ws in sockets:
                push = await ws.receive_json_from(1)
                assert push["event"] == "shop.Product.retrieve", push
                reply = await ws.request("connection")
                assert reply["data"]["user_id"] == user.pk


async def test_a_token_changed_without_a_signal_is_caught(user):
    key = (await orm(Token.objects.create, user=user)).key
    with rechecking():
        async with client(f"/ws/?token={key}") as ws:
            assert ws.connection["user_id"] == user.pk
            # QuerySet.update() sends no signal: only the re-check can see it.
            await orm(Token.objects.filter(key=key).update, key="f" * 40)
            changed = time.time()
            assert await closed_by(ws, changed + PERIOD + SLACK) == 4401


async def test_a_session_deleted_without_logout_is_caught(user):
    """As ``clearsessions`` removes expired sessions: no ``user_logged_out``."""
    cookie = await orm(session_cookie, user)
    key = cookie[1].decode().split("=", 1)[1]
    with rechecking():
        async with client(headers=[cookie]) as ws:
            assert ws.connection["user_id"] == user.pk
            await orm(Session.objects.filter(session_key=key).delete)
            deleted = time.time()
            assert await closed_by(ws, deleted + PERIOD + SLACK) == 4401


async def test_a_jwt_past_its_exp_is_caught(user):
    from rest_framework_simplejwt.tokens import AccessToken

    access = await orm(AccessToken.for_user, user)
    access.set_exp(lifetime=timedelta(seconds=2))  # a whole second at least
    expires = access["exp"]
    header = (b"authorization", f"Bearer {access}".encode())
    with rechecking():
        async with client(headers=[header]) as ws:
            assert ws.connection["user_id"] == user.pk
            assert await closed_by(ws, expires + PERIOD + SLACK) == 4401
            assert time.time() >= expires


async def test_zero_turns_the_recheck_off(user):
    token, expires = expiring(user, 0.2)
    with rechecking(AUTH_RECHECK_SECONDS=0):
        async with client(f"/ws/?token={token}") as ws:
            assert await ws.receive_nothing(0.2 + 3 * PERIOD)
            reply = await ws.request("connection")
            assert reply["data"]["user_id"] == user.pk


def test_a_period_that_is_not_a_number_fails_the_checks():
    for value in (-1, "300", True):
        with rechecking(AUTH_RECHECK_SECONDS=value):
            errors = [m for m in run_checks() if m.id == "channels_binding.E005"]
            assert len(errors) == 1, (value, errors)
    for value in (0, 0.5, 300, None):
        with rechecking(AUTH_RECHECK_SECONDS=value):
            assert "channels_binding.E005" not in [m.id for m in run_checks()]
