"""A real daphne process, talked to with the `websockets` client library."""

import json

import pytest
from websockets.asyncio.client import connect

from tests.servers import daphne, django_admin, server_env

pytestmark = pytest.mark.slow

SETUP = """
from tests.shop.models import Category, Product
pens = Category.objects.create(name="Pens")
for i in range(30):
    Product.objects.create(name=f"pen {i}", price=i, category=pens)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("daphne")
    env = server_env(workdir / "db.sqlite3")
    django_admin(env, "migrate", "--noinput", "-v", "0")
    django_admin(env, "shell", "-c", SETUP)
    with daphne(env, workdir / "daphne.log") as port:
        yield port


class Client:
    def __init__(self, websocket):
        self.websocket = websocket
        self.next_id = 0

    async def receive(self):
        return json.loads(await self.websocket.recv())

    async def request(self, event, data=None):
        self.next_id += 1
        frame = {"event": event, "request_id": self.next_id}
        if data is not None:
            frame["data"] = data
        await self.websocket.send(json.dumps(frame))
        return await self.receive()


async def test_real_server_answers_the_protocol(server):
    async with connect(f"ws://127.0.0.1:{server}/ws/") as websocket:
        client = Client(websocket)
        hello = await client.receive()
        assert hello["event"] == "connection"
        assert hello["data"]["authenticated"] is False
        assert hello["data"]["user_id"] is None

        await websocket.send(json.dumps({"event": "ping"}))
        assert await client.receive() == {"event": "pong", "data": {}}

        page = await client.request("shop.Product.list", {"page": 2, "limit": 10})
        assert page["request_id"] == 1
        assert {k: page["data"][k] for k in ("page", "limit", "count")} == {
            "page": 2,
            "limit": 10,
            "count": 30,
        }
        assert [row["name"] for row in page["data"]["rows"]] == [
            f"pen {i}" for i in range(10, 20)
        ]
        assert page["data"]["rows"][0]["category"]["name"] == "Pens"

        first = page["data"]["rows"][0]["id"]
        one = await client.request(f"shop.Product.retrieve#{first}")
        assert one["event"] == f"shop.Product.retrieve#{first}"
        assert one["data"]["name"] == "pen 10"

        refused = await client.request("shop.Product.create", {"name": "x"})
        assert refused["error"]["status"] == 401

        await websocket.send("{not json")
        bad = await client.receive()
        assert bad["error"]["code"] == "parse_error"
        await websocket.send(b"\x00\x01")
        binary = await client.receive()
        assert binary["error"]["code"] == "parse_error"

        # still alive after the bad frames
        again = await client.request("tools.add", {"a": 2, "b": 3})
        assert again["data"] == {"sum": 5}


async def test_real_server_sync_consumer(server):
    async with connect(f"ws://127.0.0.1:{server}/ws/sync/") as websocket:
        client = Client(websocket)
        assert (await client.receive())["event"] == "connection"
        reply = await client.request("shop.Product.search", {"query": "pen 2"})
        # every word must match: "pen" and "2" (pen 2, pen 12, pen 20 .. pen 29)
        assert reply["data"]["count"] == 12


# -- the HTTP side, served by the same process ---------------------------------------

HTTP_SETUP = """
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from tests.shop.models import Product
Product.objects.create(name="pen", price=2)
user = get_user_model().objects.create_user("carol", password="pw")
print(Token.objects.create(user=user).key)
"""


@pytest.fixture(scope="module")
def http_server(tmp_path_factory):
    """A daphne process, and the token of a user ("carol") in its database."""
    workdir = tmp_path_factory.mktemp("daphne-http")
    env = server_env(workdir / "db.sqlite3")
    django_admin(env, "migrate", "--noinput", "-v", "0")
    token = django_admin(env, "shell", "-c", HTTP_SETUP).strip()
    with daphne(env, workdir / "daphne.log") as port:
        yield port, token


def http_call(port, method, path, body=None, token=None):
    """``(status, JSON)`` of one request to the real server, errors included."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    if token is not None:
        request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


async def test_real_server_http_side_answers_with_websocket_frames(http_server):
    import asyncio

    port, token = http_server

    async def call(*args):
        return await asyncio.to_thread(http_call, port, *args)

    status, created = await call("POST", "shop/Product/", {"name": "ink", "price": 3})
    assert status == 401
    assert created["error"]["code"] == "not_authenticated"

    body = {"name": "ink", "price": "3.50"}
    status, created = await call("POST", "shop/Product/", body, token)
    assert status == 200, created
    assert created["event"] == "shop.Product.create"
    pk = created["data"]["id"]
    status, listed = await call("GET", "shop/Product/?ordering=-price&limit=1")
    assert status == 200
    assert listed == {
        "event": "shop.Product.list",
        "data": {"page": 1, "limit": 1, "count": 2, "rows": [created["data"]]},
    }
    status, retrieved = await call("GET", f"shop/Product/{pk}/")
    assert (status, retrieved) == (
        200,
        {"event": "shop.Product.retrieve", "data": created["data"]},
    )
    status, frame = await call(
        "POST", "events/", {"event": "tools.whoami", "request_id": 9}, token
    )
    assert status == 200
    assert frame["request_id"] == 9
    assert frame["data"]["transport"] == "http"
    assert isinstance(frame["data"]["user_id"], int)

    async with connect(f"ws://127.0.0.1:{port}/ws/") as websocket:
        client = Client(websocket)
        assert (await client.receive())["event"] == "connection"
        reply = await client.request("shop.Product.retrieve", {"id": pk})
        assert reply.pop("request_id") == 1
        assert reply == retrieved
        # a change over HTTP reaches the websocket that watches the row
        status, _ = await call("PATCH", f"shop/Product/{pk}/", {"price": "4"}, token)
        assert status == 200
        push = await asyncio.wait_for(client.receive(), 5)
        assert push["event"] == "shop.Product.retrieve"
        assert push["data"]["price"] == "4.00"
        status, missing = await call("GET", "shop/Product/999/")
        assert status == 404
        reply = await client.request("shop.Product.retrieve", {"id": 999})
        assert reply.pop("request_id") == 2
        assert missing == reply
