"""Faults: Redis dies and comes back under two live server processes; the database
fails inside a handler. Requests keep being answered, sockets stay open, and pushes
work again once Redis is back, without restarting the servers."""

import asyncio
import json
import time

import pytest
from django.db import connection
from websockets.asyncio.client import connect

from tests.servers import daphne, django_admin, free_port, server_env, start_redis
from tests.test_multiprocess import BACKENDS, SETUP, receive, request

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("backend", sorted(BACKENDS))
async def test_redis_restart_under_two_servers(tmp_path, backend):
    port = free_port()
    redis = start_redis(tmp_path, port)
    url = f"redis://127.0.0.1:{port}/0"
    env = server_env(tmp_path / "db.sqlite3", url, CB_REDIS_BACKEND=BACKENDS[backend])
    await asyncio.to_thread(django_admin, env, "migrate", "--noinput", "-v", "0")
    output = await asyncio.to_thread(django_admin, env, "shell", "-c", SETUP)
    session, pk = output.split()
    cookie = {"Cookie": f"sessionid={session}"}
    try:
        with (
            daphne(env, tmp_path / "one.log") as one,
            daphne(env, tmp_path / "two.log") as two,
        ):
            async with (
                connect(f"ws://127.0.0.1:{one}/ws/") as watcher,
                connect(
                    f"ws://127.0.0.1:{two}/ws/", additional_headers=cookie
                ) as writer,
            ):
                await receive(watcher)
                await receive(writer)
                await request(watcher, "shop.Product.retrieve", {"id": int(pk)}, 1)
                await request(
                    writer, "shop.Product.update", {"id": int(pk), "name": "a"}, 1
                )
                assert (await receive(watcher))["data"]["name"] == "a"

                redis.terminate()
                redis.wait(timeout=10)
                # during the outage: every request is answered, writes succeed
                ids = iter(range(100, 1000))
                for _ in range(3):
                    reply = await request(
                        watcher, "shop.Product.retrieve", {"id": int(pk)}, next(ids)
                    )
                    assert reply["data"]["id"] == int(pk)
                    reply = await request(
                        writer,
                        "shop.Product.update",
                        {"id": int(pk), "name": "during"},
                        next(ids),
                    )
                    assert reply["data"]["name"] == "during"
                    await asyncio.sleep(0.5)
                await watcher.send(json.dumps({"event": "ping"}))
                # a push for a change made during the outage may be lost, or not
                while (frame := await receive(watcher)).get("event") != "pong":
                    assert frame["event"] == "shop.Product.retrieve"

                redis = start_redis(tmp_path, port)
                # pushes come back without restarting the servers
                deadline = time.monotonic() + 20
                received = None
                attempt = 0
                while time.monotonic() < deadline and received is None:
                    attempt += 1
                    name = f"after {attempt}"
                    await request(
                        writer,
                        "shop.Product.update",
                        {"id": int(pk), "name": name},
                        next(ids),
                    )
                    try:
                        frame = await receive(watcher, timeout=1)
                    except TimeoutError:
                        continue
                    if frame["data"]["name"] == name:
                        received = frame
                assert received is not None, "no push within 20 s of Redis coming back"
                # and keep working
                await request(
                    writer, "shop.Product.update", {"id": int(pk), "name": "z"}, 999
                )
                while (frame := await receive(watcher))["data"]["name"] != "z":
                    pass
    finally:
        redis.terminate()
        redis.wait(timeout=10)


@pytest.mark.django_db(transaction=True)
async def test_database_error_in_a_handler_is_a_500_and_the_socket_lives(
    communicator, user
):
    def broken_execute(execute, sql, params, many, context):
        raise connection.OperationalError("disk I/O error at /var/db/secret.sqlite3")

    async with communicator(user) as client:
        from channels.db import database_sync_to_async

        @database_sync_to_async
        def install():
            connection.execute_wrappers.append(broken_execute)

        @database_sync_to_async
        def remove():
            connection.execute_wrappers.remove(broken_execute)

        await install()
        try:
            reply = await client.request("shop.Product.list")
        finally:
            await remove()
        assert reply["error"] == {
            "status": 500,
            "code": "server_error",
            "detail": "Server error.",
        }
        reply = await client.request("shop.Product.list")
        assert reply["data"]["count"] == 0
