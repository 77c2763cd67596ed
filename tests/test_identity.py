"""Who a connection is: session, tokens (header, query string, subprotocol, JWT),
the in-band ``authorize`` event, refused anonymous handshakes, and channels."""

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.backends.db import SessionStore
from django.test import override_settings
from rest_framework.authtoken.models import Token

from channels_binding import notify
from channels_binding.testing import BindingCommunicator
from tests.asgi import application
from tests.shop.models import Note

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = {"BINDINGS_MODULES": ["tests.root_bindings"]}


@pytest.fixture
def token(user):
    return Token.objects.create(user=user).key


@pytest.fixture
def other_token(other_user):
    return Token.objects.create(user=other_user).key


def session_cookie(user):
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()
    return (b"cookie", f"sessionid={session.session_key}".encode())


def client(path="/ws/", **kwargs):
    return BindingCommunicator(application, path, **kwargs)


async def test_anonymous_connection(communicator):
    async with communicator() as ws:
        assert ws.connection["authenticated"] is False
        assert ws.connection["user_id"] is None
        reply = await ws.request("shop.Product.create", {"name": "x", "price": "1"})
        assert reply["error"]["code"] == "not_authenticated"


async def test_session_cookie(user):
    cookie = await database_sync_to_async(session_cookie)(user)
    async with client(headers=[cookie]) as ws:
        assert ws.connection == {
            "client_id": ws.connection["client_id"],
            "user_id": user.pk,
            "authenticated": True,
            "channels": [],
        }


async def test_the_session_user_is_kept_unwrapped(user):
    """Channels puts a lazy wrapper in the scope; the connection keeps the user
    itself (each read through the wrapper costs a call, on every request)."""
    from channels.auth import UserLazyObject
    from django.contrib.auth.models import AnonymousUser

    from channels_binding.authentication import ScopeUserAuthentication

    lazy = UserLazyObject()
    lazy._wrapped = user
    found, auth = await ScopeUserAuthentication().authenticate({"user": lazy})
    assert found is user and auth is None
    anonymous = UserLazyObject()
    anonymous._wrapped = AnonymousUser()
    assert await ScopeUserAuthentication().authenticate({"user": anonymous}) is None


@pytest.mark.parametrize("keyword", ["Token", "Bearer", "token"])
async def test_token_in_authorization_header(user, token, keyword):
    header = (b"authorization", f"{keyword} {token}".encode())
    async with client(headers=[header]) as ws:
        assert ws.connection["user_id"] == user.pk
        reply = await ws.request("tools.whoami")
        assert reply["data"]["user_id"] == user.pk


async def test_token_in_query_string(user, token):
    async with client(f"/ws/?token={token}") as ws:
        assert ws.connection["user_id"] == user.pk


async def test_token_as_subprotocol_for_browsers(user, token):
    ws = client(subprotocols=["channels-binding", f"token.{token}"])
    connected, subprotocol = await ws.connect()
    assert connected
    assert subprotocol == "channels-binding"
    assert ws.connection["user_id"] == user.pk
    await ws.disconnect()


async def test_jwt_bearer_token(user):
    from rest_framework_simplejwt.tokens import AccessToken

    jwt = str(await sync_to_async(AccessToken.for_user)(user))
    classes = [
        "channels_binding.authentication.ScopeUserAuthentication",
        "channels_binding.authentication.TokenAuthentication",
        "channels_binding.authentication.JWTAuthentication",
    ]
    with override_settings(
        CHANNELS_BINDING={**ROOT, "AUTHENTICATION_CLASSES": classes}
    ):
        async with client(headers=[(b"authorization", f"Bearer {jwt}".encode())]) as ws:
            assert ws.connection["user_id"] == user.pk
        async with client(headers=[(b"authorization", b"Bearer a.b.c")]) as ws:
            assert ws.connection["authenticated"] is False
            error = await ws.receive_json_from()
            assert error["error"]["status"] == 401


async def test_bad_token_in_handshake_is_an_error_not_a_silent_downgrade(user):
    async with client("/ws/?token=wrong") as ws:
        assert ws.connection["authenticated"] is False
        error = await ws.receive_json_from()
        assert error == {
            "event": "authorize",
            "error": {
                "status": 401,
                "code": "not_authenticated",
                "detail": "Invalid token.",
            },
        }
    # with a session as well, the session's identity is kept
    cookie = await database_sync_to_async(session_cookie)(user)
    async with client("/ws/?token=wrong", headers=[cookie]) as ws:
        assert ws.connection["user_id"] == user.pk
        assert (await ws.receive_json_from())["error"]["status"] == 401


async def test_authorize_in_band_and_back_to_anonymous(user, token):
    async with client() as ws:
        reply = await ws.request("authorize", {"token": token})
        assert reply["data"]["user_id"] == user.pk
        assert reply["data"]["authenticated"] is True
        assert ws.pushes == []  # the reply comes first, then the new connection
        push = await ws.receive_json_from()
        assert push == {"event": "connection", "data": reply["data"]}
        created = await ws.request("shop.Note.create", {"text": "mine"})
        assert created["data"]["owner"] == user.pk

        reply = await ws.request("authorize", {})
        assert reply["data"]["authenticated"] is False
        assert (await ws.receive_json_from())["data"]["authenticated"] is False
        refused = await ws.request("shop.Note.list")
        assert refused["error"]["code"] == "not_authenticated"


async def test_bad_token_keeps_the_identity(user, token):
    async with client(f"/ws/?token={token}") as ws:
        for bad in ("wrong", 12, ["x"], "x" * 5000):
            reply = await ws.request("authorize", {"token": bad})
            assert reply["error"]["status"] == 401
            assert reply["error"]["code"] == "not_authenticated"
        again = await ws.request("connection")
        assert again["data"]["user_id"] == user.pk
        assert ws.pushes == []


async def test_authorize_moves_the_user_group(user, other_user, token, other_token):
    async with client() as ws:
        await ws.request("authorize", {"token": token})
        await ws.receive_json_from()  # the connection push
        await notify.ausers([user], {"to": "alice"})
        assert await ws.receive_json_from() == {
            "event": "notify",
            "data": {"to": "alice"},
        }
        await ws.request("authorize", {"token": other_token})
        await ws.receive_json_from()
        await notify.ausers([user], {"to": "alice again"})
        await notify.ausers([other_user.pk], {"to": "bob"})
        assert await ws.receive_json_from() == {
            "event": "notify",
            "data": {"to": "bob"},
        }


async def test_authorize_drops_subscriptions_the_new_user_may_not_see(
    user, token, other_token
):
    note = await database_sync_to_async(Note.objects.create)(owner=user, text="a")
    async with client() as ws:
        await ws.request("authorize", {"token": token})
        await ws.receive_json_from()
        assert (await ws.request("shop.Note.retrieve", {"id": note.pk}))["data"]
        await ws.request("authorize", {"token": other_token})
        await ws.receive_json_from()
        await database_sync_to_async(Note.objects.filter(pk=note.pk).update)(text="b")
        await database_sync_to_async(lambda: Note.objects.get(pk=note.pk).save())()
        await notify.aall({"marker": True})
        assert await ws.receive_json_from() == {
            "event": "notify",
            "data": {"marker": True},
        }
        assert await ws.receive_nothing(0.3)


async def test_anonymous_handshake_refused_when_not_allowed(user, token):
    with override_settings(
        CHANNELS_BINDING={**ROOT, "ANONYMOUS_CONNECTION_ALLOWED": False}
    ):
        ws = WebsocketCommunicator(application, "/ws/")
        connected, _ = await ws.connect()
        assert connected  # accepted, then closed with 4401
        assert await ws.receive_output() == {"type": "websocket.close", "code": 4401}
        async with client(f"/ws/?token={token}") as ws:
            assert ws.connection["user_id"] == user.pk
            reply = await ws.request("authorize", {})
            assert reply["error"]["status"] == 403
            assert (await ws.request("connection"))["data"]["user_id"] == user.pk


async def test_channels_at_connect(user, token):
    async with client(f"/ws/?token={token}&channel=room.1&channel=news") as ws:
        assert ws.connection["channels"] == ["room.1", "news"]
        await notify.achannels(["news"], {"headline": "hi"})
        assert await ws.receive_json_from() == {
            "event": "notify",
            "data": {"headline": "hi"},
        }
    async with client("/ws/?channel=room.1&channel=bad%20name") as ws:
        assert ws.connection["channels"] == []
        refused = await ws.receive_json_from()
        assert refused["event"] == "connection"
        assert refused["error"]["status"] == 403
        assert "room.1" in refused["error"]["detail"]


async def test_join_hook_is_configurable(user, token):
    hook = "tests.test_identity.NewsOnly"
    with override_settings(
        CHANNELS_BINDING={**ROOT, "CONNECTION_PERMISSION_CLASS": hook}
    ):
        async with client("/ws/?channel=news&channel=room") as ws:
            assert ws.connection["channels"] == ["news"]


class NewsOnly:
    def has_join_permission(self, connection, channel):
        return channel == "news"

    def has_relay_permission(self, connection, kind, target):
        return False
