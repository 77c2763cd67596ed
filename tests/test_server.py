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
