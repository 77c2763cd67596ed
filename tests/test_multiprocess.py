"""Live data across server processes: a real redis-server, two daphne processes.

A client watching on one process receives the pushes for writes made through the
other process's websocket, and for writes made by a third, separate Python process
(as a Celery task or a management command would), with both Redis channel layers.
"""

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.servers import daphne, django_admin, redis_server, server_env

pytestmark = pytest.mark.slow

SETUP = """
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from tests.shop.models import Product

user = get_user_model().objects.create_user("writer", password="pw")
session = SessionStore()
session["_auth_user_id"] = str(user.pk)
session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
session["_auth_user_hash"] = user.get_session_auth_hash()
session.create()
product = Product.objects.create(name="Pen", price=1)
print(session.session_key, product.pk)
"""

BACKENDS = {
    "core": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def cluster(request, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(f"cluster-{request.param}")
    with redis_server(workdir) as redis_url:
        env = server_env(
            workdir / "db.sqlite3", redis_url, CB_REDIS_BACKEND=BACKENDS[request.param]
        )
        django_admin(env, "migrate", "--noinput", "-v", "0")
        session_key, product_pk = django_admin(env, "shell", "-c", SETUP).split()
        with (
            daphne(env, workdir / "one.log") as one,
            daphne(env, workdir / "two.log") as two,
        ):
            yield {
                "env": env,
                "ports": (one, two),
                "session": session_key,
                "product": int(product_pk),
            }


async def receive(websocket, timeout=5):
    return json.loads(await asyncio.wait_for(websocket.recv(), timeout))


async def request(websocket, event, data, request_id, timeout=5):
    await websocket.send(
        json.dumps({"event": event, "data": data, "request_id": request_id})
    )
    while True:
        frame = await receive(websocket, timeout)
        if frame.get("request_id") == request_id:
            return frame


async def test_write_through_one_process_is_pushed_by_the_other(cluster):
    one, two = cluster["ports"]
    pk = cluster["product"]
    cookie = {"Cookie": f"sessionid={cluster['session']}"}
    async with (
        connect(f"ws://127.0.0.1:{one}/ws/") as watcher,
        connect(f"ws://127.0.0.1:{two}/ws/", additional_headers=cookie) as writer,
    ):
        assert (await receive(watcher))["event"] == "connection"
        hello = await receive(writer)
        assert hello["data"]["authenticated"] is True

        await request(watcher, "shop.Product.retrieve#pen", {"id": pk}, 1)
        await request(watcher, "shop.Product.list#all", {}, 2)

        reply = await request(
            writer, "shop.Product.update", {"id": pk, "name": "Renamed"}, 1
        )
        assert reply["data"]["name"] == "Renamed"
        pushes = [await receive(watcher), await receive(watcher)]
        assert sorted(p["event"] for p in pushes) == [
            "shop.Product.retrieve#all",
            "shop.Product.retrieve#pen",
        ]
        assert all(p["data"]["name"] == "Renamed" for p in pushes)

        created = await request(
            writer, "shop.Product.create", {"name": "Ink", "price": "2.00"}, 2
        )
        push = await receive(watcher)
        assert push == {"event": "shop.Product.retrieve#all", "data": created["data"]}

        # a separate Python process, as a Celery task would write
        script = (
            "from tests.shop.models import Product; "
            f"Product.objects.get(pk={pk}).delete()"
        )
        await asyncio.to_thread(django_admin, cluster["env"], "shell", "-c", script)
        pushes = [await receive(watcher), await receive(watcher)]
        assert sorted(p["event"] for p in pushes) == [
            "shop.Product.delete#all",
            "shop.Product.delete#pen",
        ]
        assert all(p["data"] == {"id": pk} for p in pushes)


async def test_notify_from_another_process_reaches_both_servers(cluster):
    one, two = cluster["ports"]
    cookie = {"Cookie": f"sessionid={cluster['session']}"}
    async with (
        connect(f"ws://127.0.0.1:{one}/ws/", additional_headers=cookie) as first,
        connect(f"ws://127.0.0.1:{two}/ws/", additional_headers=cookie) as second,
        connect(f"ws://127.0.0.1:{two}/ws/") as anonymous,
        connect(
            f"ws://127.0.0.1:{one}/ws/?channel=room", additional_headers=cookie
        ) as member,
    ):
        hello = await receive(first)
        assert (await receive(second))["data"]["user_id"] == hello["data"]["user_id"]
        anonymous_id = (await receive(anonymous))["data"]["client_id"]
        assert (await receive(member))["data"]["channels"] == ["room"]
        script = (
            "from channels_binding import notify; "
            f"notify.users([{hello['data']['user_id']}], {{'job': 'done'}}); "
            f"assert notify.clients([{anonymous_id!r}], {{'to': 'you'}}) == 1; "
            "notify.channels(['room'], {'room': 'news'}); "
            "notify.all({'marker': True})"
        )
        await asyncio.to_thread(django_admin, cluster["env"], "shell", "-c", script)
        for websocket in (first, second, member):
            assert await receive(websocket) == {
                "event": "notify",
                "data": {"job": "done"},
            }
        assert await receive(anonymous) == {"event": "notify", "data": {"to": "you"}}
        assert await receive(member) == {"event": "notify", "data": {"room": "news"}}
        for websocket in (first, second, anonymous, member):
            assert await receive(websocket) == {
                "event": "notify",
                "data": {"marker": True},
            }


async def test_revocation_from_another_process_closes_sockets_on_both(cluster):
    one, two = cluster["ports"]
    cookie = {"Cookie": f"sessionid={cluster['session']}"}
    async with (
        connect(f"ws://127.0.0.1:{one}/ws/", additional_headers=cookie) as first,
        connect(f"ws://127.0.0.1:{two}/ws/", additional_headers=cookie) as second,
        connect(f"ws://127.0.0.1:{two}/ws/") as anonymous,
    ):
        user_id = (await receive(first))["data"]["user_id"]
        await receive(second)
        await receive(anonymous)
        script = (
            "from channels_binding.live import disconnect_user; "
            f"disconnect_user({user_id})"
        )
        await asyncio.to_thread(django_admin, cluster["env"], "shell", "-c", script)
        for websocket in (first, second):
            with pytest.raises(ConnectionClosed) as closed:
                await receive(websocket, timeout=1)
            assert closed.value.rcvd.code == 4401
        await request(anonymous, "ping", {}, 1)
