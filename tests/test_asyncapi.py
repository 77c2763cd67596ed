"""`manage.py bindings --asyncapi`: an AsyncAPI 3.0 document of the websocket.

It must validate against the official AsyncAPI 3.0.0 JSON Schema (vendored in
tests/asyncapi/, see its README), describe every event of every binding, and
describe the frames the server really sends: frames from a real session are
validated against the payloads the document gives for them.
"""

import json
from io import StringIO
from pathlib import Path

import jsonschema
import pytest
from channels.db import database_sync_to_async
from django.core.management import call_command
from django.test import override_settings
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from channels_binding.permissions import event_permission_classes, permission_name
from channels_binding.registry import registry
from tests.shop.models import Category, Product

ASYNCAPI_SCHEMA = json.loads(
    (Path(__file__).parent / "asyncapi" / "3.0.0.json").read_text()
)


def asyncapi() -> dict:
    out = StringIO()
    call_command("bindings", "--asyncapi", stdout=out)
    return json.loads(out.getvalue())


def schema_errors(document: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(ASYNCAPI_SCHEMA)
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message[:200]}"
        for error in validator.iter_errors(document)
    ]


def payload_errors(document: dict, channel: str, message: str, frame: dict) -> list:
    """How ``frame`` fails the payload of ``#/channels/<channel>/messages/<message>``
    (its ``$ref``\\ s resolved in the document)."""
    resource = Resource.from_contents(document, default_specification=DRAFT7)
    registry = Registry().with_resource("urn:asyncapi", resource)
    pointer = f"urn:asyncapi#/channels/{channel}/messages/{message}/payload"
    validator = jsonschema.Draft7Validator({"$ref": pointer}, registry=registry)
    return [error.message for error in validator.iter_errors(frame)]


def test_the_document_is_valid_asyncapi_3():
    document = asyncapi()
    assert document["asyncapi"] == "3.0.0"
    assert schema_errors(document) == []


@override_settings(CHANNELS_BINDING={"CLIENT_NOTIFICATIONS": True})
def test_client_relays_are_described_when_they_are_on():
    document = asyncapi()
    assert schema_errors(document) == []
    assert {"notify.users", "notify.channels", "notify.clients"} <= set(
        document["operations"]
    )
    assert "notify.users" not in asyncapi_without_relays()["operations"]


def asyncapi_without_relays() -> dict:
    with override_settings(CHANNELS_BINDING={"CLIENT_NOTIFICATIONS": False}):
        return asyncapi()


def test_every_event_of_every_binding_is_an_operation_with_its_permissions():
    document = asyncapi()
    operations = document["operations"]
    for binding in registry:
        channel = document["channels"][binding.stream]
        assert channel["address"] is None
        for name, handler_name in binding.events.items():
            operation = operations[f"{binding.stream}.{name}"]
            assert operation["action"] == "receive"
            assert operation["channel"] == {"$ref": f"#/channels/{binding.stream}"}
            replies = [
                ref["$ref"].rsplit("/", 1)[1] for ref in operation["reply"]["messages"]
            ]
            assert replies == [f"{name}.reply", "error"]
            classes = event_permission_classes(binding, handler_name)
            assert operation["x-permission-classes"] == [
                permission_name(c) for c in classes
            ]
        pushes = {
            f"{binding.stream}.{a}.push" for a in ("retrieve", "delete", "resync")
        }
        assert (pushes <= set(operations)) == (binding.model is not None)
    # Tag allows retrieve and list only; tools has custom events only
    assert {op for op in operations if op.startswith("shop.Tag.")} == {
        "shop.Tag.retrieve",
        "shop.Tag.list",
        "shop.Tag.retrieve.push",
        "shop.Tag.delete.push",
        "shop.Tag.resync.push",
    }
    assert "tools.add" in operations and "tools.retrieve.push" not in operations
    for event in ("connection", "ping", "authorize", "resume", "notify.push"):
        assert event in operations


def test_rows_and_writes_follow_the_serializer():
    schemas = asyncapi()["components"]["schemas"]
    row, write = schemas["shop.Product.row"], schemas["shop.Product.write"]
    fields = ["id", "name", "description", "price", "in_stock", "category", "tags"]
    assert list(row["properties"]) == [*fields, "created"]  # not the write-only one
    assert row["required"] == list(row["properties"])
    assert row["properties"]["name"] == {"type": "string", "maxLength": 100}
    assert row["properties"]["price"]["type"] == "string"  # DRF sends decimals as text
    assert row["properties"]["tags"] == {"type": "array", "items": {"type": "string"}}
    category = row["properties"]["category"]  # nested, null when the product has none
    assert category["type"] == ["object", "null"]
    assert list(category["properties"]) == ["id", "name"]
    # what create takes: no read-only field, the write-only one, DRF's required
    assert list(write["properties"]) == [
        "name", "description", "price", "in_stock", "category_id", "tags",
    ]  # fmt: skip
    assert write["required"] == ["name", "price"]
    assert write["properties"]["category_id"]["type"] == ["integer", "null"]


@database_sync_to_async
def orm(fn, *args, **kwargs):
    return fn(*args, **kwargs)


@pytest.mark.django_db(transaction=True)
async def test_frames_on_the_wire_match_their_documented_payloads(communicator, user):
    document = await database_sync_to_async(asyncapi)()
    pens = await orm(Category.objects.create, name="Pens")
    pen = await orm(Product.objects.create, name="Pen", price=1, category=pens)
    frames = []  # (channel, message, frame)
    async with (
        communicator(path="/ws/?resume=1") as watcher,
        communicator(user) as writer,
    ):
        connection = {"event": "connection", "data": watcher.connection}
        frames.append(("connection", "connection.push", connection))
        for event, data, message in [
            ("shop.Product.retrieve#side", {"id": pen.pk}, "retrieve.reply"),
            ("shop.Product.list", {"filters": {"in_stock": True}}, "list.reply"),
            ("shop.Product.search", {"query": "pe", "limit": 5}, "search.reply"),
            ("ping", None, "ping.reply"),
            ("connection", None, "connection.reply"),
        ]:
            reply = await watcher.request(event, data)
            channel = (
                "connection"
                if message.startswith(("ping", "connection"))
                else "shop.Product"
            )
            frames.append((channel, message, reply))
        for event, data, message in [
            ("shop.Product.create", {"name": "Ink", "price": "2.50"}, "create.reply"),
            (
                "shop.Product.update",
                {"id": pen.pk, "category_id": None},
                "update.reply",
            ),
            ("shop.Product.save", {"name": "Pad", "price": 3}, "save.reply"),
            ("shop.Product.create", {"name": "Bad", "price": -1}, "error"),
            ("shop.Product.delete", {"id": pen.pk}, "delete.reply"),
            ("shop.Product.subscribe", {"filters": {}}, "subscribe.reply"),
            ("tools.add", {"a": 1, "b": 2}, "add.reply"),
        ]:
            frames.append(
                (event.rsplit(".", 1)[0], message, await writer.request(event, data))
            )
        frames.append(
            ("connection", "error", await writer.request("nothing.here.retrieve"))
        )
        # the watcher's pushes: the new rows of its list, the pen's changes and its
        # deletion, the last change (its other pushes, if any, are left unread)
        pushes = list(watcher.pushes)
        while not any(push["event"] == "shop.Product.delete#side" for push in pushes):
            pushes.append(await watcher.receive_json_from(3))
    kinds = {push["event"].split("#")[0].rsplit(".", 1)[1] for push in pushes}
    assert kinds == {"retrieve", "delete"}
    assert all("pos" in push for push in pushes)
    for push in pushes:
        action = push["event"].split("#")[0].rsplit(".", 1)[1]
        frames.append(("shop.Product", f"{action}.push", push))
    assert [p["data"]["category"] for p in pushes if p["data"].get("name") == "Pen"]
    for channel, message, frame in frames:
        assert payload_errors(document, channel, message, frame) == [], (message, frame)


def test_a_frame_that_breaks_the_documented_payload_fails():
    """The check above can fail: a row missing a field, or with a wrong type."""
    document = asyncapi()
    row = {"id": 1, "name": "Pen", "description": "", "price": "1.00", "in_stock": True}
    row.update(category=None, tags=[], created="2026-01-01T00:00:00Z")
    reply = {"event": "shop.Product.retrieve", "data": row, "request_id": 1}
    assert payload_errors(document, "shop.Product", "retrieve.reply", reply) == []
    wrong = {**reply, "data": {**row, "price": 1.0}}
    assert payload_errors(document, "shop.Product", "retrieve.reply", wrong)
    other = {**reply, "event": "shop.Category.retrieve"}
    assert payload_errors(document, "shop.Product", "retrieve.reply", other)
    push = {"event": "shop.Product.retrieve#w1", "data": row, "request_id": 1}
    assert payload_errors(document, "shop.Product", "retrieve.push", push)
