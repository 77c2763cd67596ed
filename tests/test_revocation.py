"""Revocation reaches open sockets: a user deactivated, deleted or given a new
password, a token deleted, a session logged out, or ``disconnect_user()``, closes
(4401) or downgrades every connection of that identity, and nothing is pushed to
it afterwards. Across processes: tests/test_multiprocess.py."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import logout
from django.contrib.sessions.backends.db import SessionStore
from django.http import HttpRequest
from django.test import override_settings
from rest_framework.authtoken.models import Token

from channels_binding.live import adisconnect_user, disconnect_user
from channels_binding.testing import BindingCommunicator
from tests.asgi import application
from tests.shop.models import Note, Product
from tests.test_identity import session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = {"BINDINGS_MODULES": ["tests.root_bindings"]}


@database_sync_to_async
def orm(fn, *args, **kwargs):
    return fn(*args, **kwargs)


def client(path="/ws/", **kwargs):
    return BindingCommunicator(application, path, **kwargs)


async def closed_within(ws, seconds=1.0):
    """The close code, if the server closed the socket within ``seconds``;
    frames before it (there must be none) fail the test."""
    message = await ws.receive_output(seconds)
    assert message["type"] == "websocket.close", message
    return message.get("code")


async def watching(ws, product):
    reply = await ws.request("shop.Product.retrieve", {"id": product.pk})
    assert "error" not in reply, reply


def deactivate(user):
    user.is_active = False
    user.save()


def new_password(user):
    user.set_password("another")
    user.save()


def log_out(user, session_key):
    request = HttpRequest()
    request.session = SessionStore(session_key=session_key)
    request.user = user
    logout(request)


def rename(pk):
    Product.objects.filter(pk=pk).update(name="after")
    from channels_binding.live import announce

    announce(Product, [pk])


@pytest.mark.parametrize(
    "revoke", [deactivate, new_password, lambda user: user.delete(), disconnect_user]
)
async def test_revoking_a_user_closes_the_socket(user, revoke):
    product = await orm(Product.objects.create, name="Pen", price=1)
    cookie = await orm(session_cookie, user)
    async with client(headers=[cookie]) as ws:
        await watching(ws, product)
        await orm(revoke, user)
        assert await closed_within(ws) == 4401
        await orm(rename, product.pk)
        assert await ws.receive_nothing(0.3)


async def test_adisconnect_user_from_async_code(user):
    cookie = await orm(session_cookie, user)
    async with client(headers=[cookie]) as ws:
        await adisconnect_user(user.pk)
        assert await closed_within(ws) == 4401


async def test_deleting_a_token_closes_its_connections_only(user):
    token = (await orm(Token.objects.create, user=user)).key
    cookie = await orm(session_cookie, user)
    async with (
        client(f"/ws/?token={token}") as by_token,
        client(headers=[cookie]) as by_session,
    ):
        assert by_token.connection["user_id"] == user.pk
        await orm(Token.objects.filter(key=token).delete)
        assert await closed_within(by_token) == 4401
        reply = await by_session.request("ping")
        assert reply["event"] == "pong"


async def test_logging_out_a_session_closes_its_connections_only(user, other_user):
    cookie = await orm(session_cookie, user)
    other = await orm(session_cookie, user)
    session_key = cookie[1].decode().split("=", 1)[1]
    async with client(headers=[cookie]) as mine, client(headers=[other]) as theirs:
        await orm(log_out, user, session_key)
        assert await closed_within(mine) == 4401
        reply = await theirs.request("ping")
        assert reply["event"] == "pong"


async def test_downgrade_instead_of_close(user):
    await orm(Note.objects.create, owner=user, text="secret")
    cookie = await orm(session_cookie, user)
    settings = {**ROOT, "REVOKED_CONNECTIONS": "downgrade"}
    with override_settings(CHANNELS_BINDING=settings):
        async with client(headers=[cookie]) as ws:
            reply = await ws.request("shop.Note.list")
            assert reply["data"]["count"] == 1
            await orm(deactivate, user)
            frame = await ws.receive_json_from(1)
            assert frame["event"] == "connection"
            assert frame["data"]["authenticated"] is False
            reply = await ws.request("shop.Note.list")
            assert "error" in reply or reply["data"]["count"] == 0, reply


async def test_other_users_are_untouched(user, other_user):
    product = await orm(Product.objects.create, name="Pen", price=1)
    mine = await orm(session_cookie, user)
    theirs = await orm(session_cookie, other_user)
    async with client(headers=[mine]) as ws, client(headers=[theirs]) as other:
        await watching(other, product)
        await orm(deactivate, user)
        assert await closed_within(ws) == 4401
        await asyncio.sleep(0.1)
        await orm(rename, product.pk)
        push = await other.receive_json_from(1)
        assert push["data"]["name"] == "after"
