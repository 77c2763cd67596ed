"""Server-side notifications and client relays reach exactly their recipients.

"Nobody else" is checked with a marker: after the targeted notification, a
notification to everyone is sent, and every other connection's next frame must be
that marker.
"""

import asyncio
import threading

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny

from channels_binding import notify
from channels_binding.bindings import AsyncBinding, bind
from channels_binding.registry import registry
from channels_binding.testing import BindingCommunicator
from tests.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = {"BINDINGS_MODULES": ["tests.root_bindings"]}
RELAY_ON = override_settings(CHANNELS_BINDING={**ROOT, "CLIENT_NOTIFICATIONS": True})
MARKER = {"event": "notify", "data": {"marker": True}}


def connect_as(user=None, query=""):
    client = BindingCommunicator(application, f"/ws/?{query}")
    if user is not None:
        client.scope["user"] = user
    return client


async def open_all(*clients):
    for client in clients:
        connected, _ = await client.connect()
        assert connected


async def close_all(*clients):
    for client in clients:
        await client.disconnect()


async def assert_only_marker(*clients):
    await notify.aall({"marker": True})
    for client in clients:
        assert client.pushes == []  # nothing arrived while a reply was awaited
        assert await client.receive_json_from() == MARKER
        assert await client.receive_nothing(0.05)


async def test_users_reaches_every_socket_of_that_user_only(user, other_user):
    alice_1, alice_2 = connect_as(user), connect_as(user)
    bob, anonymous = connect_as(other_user), connect_as()
    await open_all(alice_1, alice_2, bob, anonymous)
    sent = await notify.ausers([user], {"message": "export ready"})
    assert sent == 1
    for client in (alice_1, alice_2):
        assert await client.receive_json_from() == {
            "event": "notify",
            "data": {"message": "export ready"},
        }
    await assert_only_marker(bob, anonymous, alice_1, alice_2)
    # by primary key too
    await notify.ausers([other_user.pk], "plain text")
    assert await bob.receive_json_from() == {"event": "notify", "data": "plain text"}
    await assert_only_marker(alice_1, alice_2, anonymous, bob)
    await close_all(alice_1, alice_2, bob, anonymous)


async def test_channels_reach_members_only(user, other_user):
    member = connect_as(user, "channel=room.7")
    other_room = connect_as(other_user, "channel=room.8")
    await open_all(member, other_room)
    await notify.achannels(["room.7"], {"event": "chat.message", "data": {"t": "hi"}})
    assert await member.receive_json_from() == {
        "event": "chat.message",
        "data": {"t": "hi"},
    }
    await assert_only_marker(other_room)
    await close_all(member, other_room)


async def test_clients_reach_one_connection(user):
    first, second = connect_as(user), connect_as(user)
    await open_all(first, second)
    await notify.aclients([second.connection["client_id"]], {"only": "second"})
    assert await second.receive_json_from() == {
        "event": "notify",
        "data": {"only": "second"},
    }
    await assert_only_marker(first)
    with pytest.raises(ValueError):
        await notify.aclients(["not a client id"], {})
    await close_all(first, second)


async def test_all_reaches_everyone_and_own_event_without_data(user):
    clients = [connect_as(user), connect_as()]
    await open_all(*clients)
    await notify.aall({"event": "maintenance", "at": "18:00"})
    for client in clients:
        assert await client.receive_json_from() == {
            "event": "maintenance",
            "data": {"at": "18:00"},
        }
    await close_all(*clients)


async def test_sync_api_from_another_thread(user):
    client = connect_as(user)
    await open_all(client)
    errors = []

    def worker():  # as a Celery task or a view would call it
        try:
            notify.users([user.pk], {"from": "thread"})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    await sync_to_async(worker)()
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert errors == []
    for _ in range(2):
        assert await client.receive_json_from() == {
            "event": "notify",
            "data": {"from": "thread"},
        }
    await close_all(client)


async def test_not_json_is_refused_at_the_call():
    with pytest.raises(TypeError):
        await notify.aall({"when": object()})


async def test_notify_self_from_handlers(user):
    async with connect_as(user) as client:
        reply = await client.request("tools.progress")
        assert reply["data"] == {"done": True, "notified": True}
        assert client.pushes == [{"event": "notify", "data": {"step": 1}}]
        reply = await client.request("tools.aprogress")
        assert reply["data"] == {"done": True, "notified": True}
        assert client.pushes[1] == {"event": "job.step", "data": {"step": 2}}


@pytest.mark.parametrize("path", ["/ws/", "/ws/sync/"])
async def test_notify_self_from_an_async_handler(user, path):
    class Steps(AsyncBinding):
        stream = "steps"
        permission_classes = [AllowAny]

        @bind("run", method="GET")
        async def run_steps(self, request):
            sent = request.notify_self({"step": 1})
            await asyncio.sleep(0)
            return {"notified": sent}

    try:
        client = BindingCommunicator(application, path)
        client.scope["user"] = user
        async with client:
            reply = await client.request("steps.run")
            assert reply["data"] == {"notified": True}
            if not client.pushes:
                client.pushes.append(await client.receive_json_from())
            assert client.pushes == [{"event": "notify", "data": {"step": 1}}]
    finally:
        registry.unregister("steps")


async def test_relays_do_not_exist_by_default(user, other_user):
    async with connect_as(user) as client:
        for kind in ("users", "channels", "clients"):
            reply = await client.request(
                f"notify.{kind}", {"targets": [other_user.pk], "data": {"x": 1}}
            )
            assert reply["error"]["status"] == 404
            assert reply["error"]["code"] == "unknown_event"


async def test_relay_to_users_when_enabled(user, other_user):
    with RELAY_ON:
        sender, receiver, stranger = (
            connect_as(user),
            connect_as(other_user),
            connect_as(),
        )
        await open_all(sender, receiver, stranger)
        reply = await sender.request(
            "notify.users", {"targets": [other_user.pk], "data": {"hello": "bob"}}
        )
        assert reply["data"] == {"sent": 1}
        assert await receiver.receive_json_from() == {
            "event": "notify",
            "data": {"hello": "bob"},
            "sender": {"user_id": user.pk, "client_id": sender.connection["client_id"]},
        }
        # a relay keeps its hash, like every event
        reply = await sender.request(
            "notify.users#tag", {"targets": [other_user.pk], "data": {"again": 1}}
        )
        assert reply["event"] == "notify.users#tag"
        assert reply["data"] == {"sent": 1}
        assert (await receiver.receive_json_from())["data"] == {"again": 1}
        # anonymous connections can never relay
        reply = await stranger.request(
            "notify.users", {"targets": [user.pk], "data": {}}
        )
        assert reply["error"]["code"] == "not_authenticated"
        await assert_only_marker(sender, stranger)
        await close_all(sender, receiver, stranger)


async def test_relay_targets_are_permission_checked(user, other_user):
    with RELAY_ON:
        member = connect_as(user, "channel=room.1")
        outsider = connect_as(other_user, "channel=room.2")
        await open_all(member, outsider)
        # a channel the sender has not joined: refused, nothing sent to anyone
        reply = await outsider.request(
            "notify.channels", {"targets": ["room.2", "room.1"], "data": {"x": 1}}
        )
        assert reply["error"]["status"] == 403
        assert "room.1" in reply["error"]["detail"]
        await assert_only_marker(member, outsider)
        reply = await member.request(
            "notify.channels", {"targets": ["room.1"], "data": {"x": 2}}
        )
        assert reply["data"] == {"sent": 1}
        # the sender is a member too: its copy may come before or after the reply
        frame = (
            member.pushes.pop() if member.pushes else await member.receive_json_from()
        )
        assert frame["data"] == {"x": 2}
        await close_all(member, outsider)


@pytest.mark.parametrize(
    "data",
    [
        {"targets": [], "data": {}},
        {"targets": "1", "data": {}},
        {"targets": [True], "data": {}},
        {"targets": [{"id": 1}], "data": {}},
        {"targets": list(range(101)), "data": {}},
        {"targets": [1]},
    ],
)
async def test_relay_validation(user, data):
    with RELAY_ON:
        async with connect_as(user) as client:
            reply = await client.request("notify.users", data)
            assert reply["error"]["status"] == 400
            assert reply["error"]["code"] == "invalid"


async def test_relay_to_an_invalid_client_id_is_a_400(user):
    with RELAY_ON:
        async with connect_as(user) as client:
            reply = await client.request(
                "notify.clients", {"targets": ["no such client"], "data": {}}
            )
            assert reply["error"]["status"] == 400


async def test_relay_hook_is_configurable(user, other_user):
    hook = "tests.test_identity.NewsOnly"  # refuses every relay
    with override_settings(
        CHANNELS_BINDING={
            **ROOT,
            "CLIENT_NOTIFICATIONS": True,
            "CONNECTION_PERMISSION_CLASS": hook,
        }
    ):
        async with connect_as(user) as client:
            reply = await client.request(
                "notify.users", {"targets": [other_user.pk], "data": {}}
            )
            assert reply["error"]["status"] == 403


async def test_token_user_gets_notifications(user):
    key = (await sync_to_async(Token.objects.create)(user=user)).key
    async with BindingCommunicator(application, f"/ws/?token={key}") as client:
        await notify.ausers([user], {"ok": True})
        assert await client.receive_json_from() == {
            "event": "notify",
            "data": {"ok": True},
        }


@pytest.mark.parametrize(
    "event", ["shop.Product.delete", "shop.Product.retrieve#x", "connection", "pong"]
)
async def test_a_relay_cannot_imitate_a_server_event(user, other_user, event):
    with RELAY_ON:
        async with connect_as(user) as client:
            reply = await client.request(
                "notify.users",
                {"targets": [other_user.pk], "data": {"event": event, "data": {}}},
            )
            assert reply["error"]["status"] == 400


async def test_a_relay_may_name_its_own_event(user, other_user):
    with RELAY_ON:
        sender, receiver = connect_as(user), connect_as(other_user)
        await open_all(sender, receiver)
        reply = await sender.request(
            "notify.users",
            {"targets": [other_user.pk], "data": {"event": "chat.message", "data": 1}},
        )
        assert reply["data"] == {"sent": 1}
        frame = await receiver.receive_json_from()
        assert (frame["event"], frame["data"]) == ("chat.message", 1)
        await close_all(sender, receiver)
