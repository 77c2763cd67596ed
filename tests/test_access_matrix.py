"""Who may do what: every event of the test project's bindings, for four identities,
over the websocket and over HTTP, as one table.

The identities are an anonymous client, alice (the **owner** of the note the
events aim at), bob (**another** user, with a note of his own) and a **staff**
user (``is_staff``, not a superuser, with a note of his own). Products, categories
and tags belong to nobody: for them "owner" and "another user" are just two
signed-in users.

``MATRIX`` is the policy: each cell is the exact outcome, the reply's data (written
out in ``REQUESTS``) or an error status (with its code). Before each cell the rows
are reset to the same fixture, with fixed keys; a refused request must leave every
table as it was, and no request may change another user's note. ``REST`` holds the
REST routes to the same rows of the matrix.

After the matrix: pushes (a watcher never hears of another user's note, and hears
of its own), mass assignment, ordering and filtering on undeclared or related
fields, guessed keys, and client relays with ``CLIENT_NOTIFICATIONS`` off and on.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.test import override_settings
from rest_framework.test import APIClient

from channels_binding import notify
from channels_binding.bindings import BUILTIN_ACTIONS
from channels_binding.testing import BindingCommunicator
from tests.asgi import application
from tests.shop.models import Category, Note, Product, Tag

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = {"BINDINGS_MODULES": ["tests.root_bindings"]}

# -- the world: fixed keys, so that the expected replies can be written out --------

ALICE, BOB, STAFF = 101, 102, 103
PRODUCT, CATEGORY, TAG = 11, 21, 31
ALICE_NOTE, BOB_NOTE, STAFF_NOTE = 41, 42, 43
CREATED = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
IDENTITIES = ("anonymous", "owner", "other", "staff")
USERS = {"owner": ALICE, "other": BOB, "staff": STAFF}
NAMES = {"owner": "alice", "other": "bob", "staff": "staff"}
NOTES = {"owner": ALICE_NOTE, "other": BOB_NOTE, "staff": STAFF_NOTE}


# -- the policy ----------------------------------------------------------------------


@dataclass(frozen=True)
class Live:
    """An outcome over a websocket; over HTTP, subscriptions are a 405 once the
    permission classes have passed the request."""

    websocket: Any


OK = "data"
SUB = Live(OK)

#: event: (anonymous, owner, another user, staff). OK is the reply in REQUESTS, a
#: number an error status; SUB is OK over a websocket and 405 over HTTP, Live(404)
#: a 404 over a websocket and 405 over HTTP. Notes: another user's note does not
#: exist for you (404, whoever you are, staff included); your save with its key
#: creates a note of your own; unsubscribe only drops your own watch. An action a
#: binding does not offer is a 405 before any permission is checked.
MATRIX: dict[str, tuple[Any, Any, Any, Any]] = {
    # event                        anonymous owner   other    staff
    "shop.Product.retrieve":      (OK,       OK,     OK,      OK),
    "shop.Product.list":          (OK,       OK,     OK,      OK),
    "shop.Product.search":        (OK,       OK,     OK,      OK),
    "shop.Product.create":        (401,      OK,     OK,      OK),
    "shop.Product.update":        (401,      OK,     OK,      OK),
    "shop.Product.save":          (401,      OK,     OK,      OK),
    "shop.Product.delete":        (401,      OK,     OK,      OK),
    "shop.Product.subscribe":     (SUB,      SUB,    SUB,     SUB),
    "shop.Product.unsubscribe":   (SUB,      SUB,    SUB,     SUB),
    "shop.Product.stats":         (OK,       OK,     OK,      OK),
    "shop.Product.echo":          (OK,       OK,     OK,      OK),
    "shop.Product.restock":       (401,      OK,     OK,      OK),
    "shop.Product.admin_only":    (401,      403,    403,     OK),
    "shop.Product.boom":          (500,      500,    500,     500),
    "shop.Category.retrieve":     (OK,       OK,     OK,      OK),
    "shop.Category.list":         (OK,       OK,     OK,      OK),
    "shop.Category.search":       (OK,       OK,     OK,      OK),
    "shop.Category.create":       (401,      OK,     OK,      OK),
    "shop.Category.update":       (401,      OK,     OK,      OK),
    "shop.Category.save":         (401,      OK,     OK,      OK),
    "shop.Category.delete":       (401,      OK,     OK,      OK),
    "shop.Category.subscribe":    (SUB,      SUB,    SUB,     SUB),
    "shop.Category.unsubscribe":  (SUB,      SUB,    SUB,     SUB),
    "shop.Tag.retrieve":          (OK,       OK,     OK,      OK),
    "shop.Tag.list":              (OK,       OK,     OK,      OK),
    "shop.Tag.search":            (405,      405,    405,     405),
    "shop.Tag.create":            (405,      405,    405,     405),
    "shop.Tag.update":            (405,      405,    405,     405),
    "shop.Tag.save":              (405,      405,    405,     405),
    "shop.Tag.delete":            (405,      405,    405,     405),
    "shop.Tag.subscribe":         (405,      405,    405,     405),
    "shop.Tag.unsubscribe":       (405,      405,    405,     405),
    "shop.Note.retrieve":         (401,      OK,     404,     404),
    "shop.Note.list":             (401,      OK,     OK,      OK),
    "shop.Note.search":           (401,      OK,     OK,      OK),
    "shop.Note.create":           (401,      OK,     OK,      OK),
    "shop.Note.update":           (401,      OK,     404,     404),
    "shop.Note.save":             (401,      OK,     OK,      OK),
    "shop.Note.delete":           (401,      OK,     404,     404),
    "shop.Note.subscribe":        (401,      SUB,    Live(404), Live(404)),
    "shop.Note.unsubscribe":      (401,      SUB,    SUB,     SUB),
    **{f"tools.{action}":         (405,      405,    405,     405)
       for action in BUILTIN_ACTIONS},
    "tools.add":                  (OK,       OK,     OK,      OK),
    "tools.whoami":               (OK,       OK,     OK,      OK),
    "tools.progress":             (OK,       OK,     OK,      OK),
    "tools.aprogress":            (OK,       OK,     OK,      OK),
}  # fmt: skip

CODES = {
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    500: "server_error",
}


def make_users() -> dict[str, Any]:
    users = get_user_model().objects
    return {
        "anonymous": None,
        "owner": users.create_user("alice", "alice@example.com", "pw", id=ALICE),
        "other": users.create_user("bob", "bob@example.com", "pw", id=BOB),
        "staff": users.create_user(
            "staff", "staff@example.com", "pw", id=STAFF, is_staff=True
        ),
    }


def reset_rows() -> None:
    """The same rows, with the same keys, before every cell."""
    Note.objects.all().delete()
    Product.objects.all().delete()
    Category.objects.all().delete()
    Tag.objects.all().delete()
    office = Category.objects.create(id=CATEGORY, name="Office")
    blue = Tag.objects.create(id=TAG, name="blue")
    pen = Product.objects.create(
        id=PRODUCT,
        name="Pen",
        description="blue ink",
        price="2.50",
        in_stock=False,
        category=office,
    )
    pen.tags.add(blue)
    Product.objects.filter(pk=PRODUCT).update(created=CREATED)
    for who, owner in USERS.items():
        name = NAMES[who]
        Note.objects.create(
            id=NOTES[who],
            owner_id=owner,
            text=f"{name}'s note",
            secret=f"{name}'s secret",
        )


def snapshot() -> dict[str, list]:
    """Every row the events could touch."""
    return {
        "products": list(Product.objects.order_by("pk").values()),
        "product tags": list(Product.tags.through.objects.order_by("pk").values()),
        "categories": list(Category.objects.order_by("pk").values()),
        "tags": list(Tag.objects.order_by("pk").values()),
        "notes": list(Note.objects.order_by("pk").values()),
        "users": list(
            get_user_model()
            .objects.order_by("pk")
            .values("pk", "username", "email", "is_staff", "password")
        ),
    }


# -- expected replies ------------------------------------------------------------------


class New:
    """The key of a row the request created: not one the fixture made."""

    def __init__(self, *fixture_keys: int) -> None:
        self.fixture_keys = fixture_keys

    def __eq__(self, other: object) -> bool:
        return isinstance(other, int) and other not in self.fixture_keys

    def __repr__(self) -> str:
        return "<a new key>"


class Now:
    """A timestamp set by the server (``auto_now_add``)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other > "2025"

    def __repr__(self) -> str:
        return "<now>"


NEW_PRODUCT, NEW_CATEGORY = New(PRODUCT), New(CATEGORY)
NEW_NOTE, NOW = New(*NOTES.values()), Now()

PEN = {
    "id": PRODUCT,
    "name": "Pen",
    "description": "blue ink",
    "price": "2.50",
    "in_stock": False,
    "category": {"id": CATEGORY, "name": "Office"},
    "tags": ["blue"],
    "created": "2024-01-01T00:00:00Z",
}
OFFICE = {"id": CATEGORY, "name": "Office"}
BLUE = {"id": TAG, "name": "blue"}


def note(who: str, text: str | None = None, key: int | None = None) -> dict:
    """A note as its owner reads it (never its ``secret``)."""
    return {
        "id": NOTES[who] if key is None else key,
        "text": text or f"{NAMES[who]}'s note",
        "owner": USERS[who],
    }


def page(*rows: dict) -> dict:
    return {"page": 1, "limit": 25, "count": len(rows), "rows": list(rows)}


@dataclass(frozen=True)
class Per:
    """A reply that depends on who asks."""

    replies: dict[str, Any]


@dataclass(frozen=True)
class ByTransport:
    """A reply that depends on the transport."""

    websocket: Any
    http: Any


def each_user(make) -> Per:
    return Per({who: make(who) for who in USERS})


DONE = {"success": True, "id": PRODUCT}
SUBSCRIBED, UNSUBSCRIBED = {"subscribed": True}, {"subscribed": False}

#: What each event sends, and the data of its success reply.
REQUESTS: dict[str, tuple[dict, Any]] = {
    # shop.Product: default permissions (anonymous users read), custom events
    "shop.Product.retrieve": ({"id": PRODUCT}, PEN),
    "shop.Product.list": ({}, page(PEN)),
    "shop.Product.search": ({"query": "ink"}, page(PEN)),
    "shop.Product.create": (
        {"name": "Eraser", "price": "1.00"},
        {
            "id": NEW_PRODUCT,
            "name": "Eraser",
            "description": "",
            "price": "1.00",
            "in_stock": True,
            "category": None,
            "tags": [],
            "created": NOW,
        },
    ),
    "shop.Product.update": ({"id": PRODUCT, "name": "Quill"}, {**PEN, "name": "Quill"}),
    "shop.Product.save": ({"id": PRODUCT, "name": "Quill"}, DONE),
    "shop.Product.delete": ({"id": PRODUCT}, DONE),
    "shop.Product.subscribe": ({"id": PRODUCT}, SUBSCRIBED),
    "shop.Product.unsubscribe": ({"id": PRODUCT}, UNSUBSCRIBED),
    "shop.Product.stats": (
        {},
        Per(
            {"anonymous": {"count": 1, "user": None}}
            | {who: {"count": 1, "user": NAMES[who]} for who in USERS}
        ),
    ),
    "shop.Product.echo": (
        {"x": 1},
        {"data": {"x": 1}, "hash": None, "event": "shop.Product.echo"},
    ),
    "shop.Product.restock": ({}, {"updated": 1}),
    "shop.Product.admin_only": ({}, {"ok": True}),
    "shop.Product.boom": ({}, None),
    # shop.Category: a model alone, default permissions
    "shop.Category.retrieve": ({"id": CATEGORY}, OFFICE),
    "shop.Category.list": ({}, page(OFFICE)),
    "shop.Category.search": ({"query": "off"}, page(OFFICE)),
    "shop.Category.create": (
        {"name": "Garden"},
        {"id": NEW_CATEGORY, "name": "Garden"},
    ),
    "shop.Category.update": (
        {"id": CATEGORY, "name": "Desk"},
        {"id": CATEGORY, "name": "Desk"},
    ),
    "shop.Category.save": (
        {"id": CATEGORY, "name": "Desk"},
        {"success": True, "id": CATEGORY},
    ),
    "shop.Category.delete": ({"id": CATEGORY}, {"success": True, "id": CATEGORY}),
    "shop.Category.subscribe": ({"id": CATEGORY}, SUBSCRIBED),
    "shop.Category.unsubscribe": ({"id": CATEGORY}, UNSUBSCRIBED),
    # shop.Tag: actions = ("retrieve", "list")
    **{
        f"shop.Tag.{action}": ({"id": TAG, "name": "red"}, None)
        for action in BUILTIN_ACTIONS
    },
    "shop.Tag.retrieve": ({"id": TAG}, BLUE),
    "shop.Tag.list": ({}, page(BLUE)),
    # shop.Note: IsAuthenticated, each user sees only their own notes, owner is
    # read-only and set on create
    "shop.Note.retrieve": ({"id": ALICE_NOTE}, note("owner")),
    "shop.Note.list": ({}, each_user(lambda who: page(note(who)))),
    # Note declares no search_fields: a search is a list (a query would be a 400).
    "shop.Note.search": ({}, each_user(lambda who: page(note(who)))),
    "shop.Note.create": (
        {"text": "new"},
        each_user(lambda who: note(who, "new", NEW_NOTE)),
    ),
    "shop.Note.update": ({"id": ALICE_NOTE, "text": "edited"}, note("owner", "edited")),
    # save updates the note the id names *for this user*, else creates one: bob's
    # save with alice's key creates a note of his own and leaves hers alone.
    "shop.Note.save": (
        {"id": ALICE_NOTE, "text": "edited"},
        Per(
            {
                "owner": {"success": True, "id": ALICE_NOTE},
                "other": {"success": True, "id": NEW_NOTE},
                "staff": {"success": True, "id": NEW_NOTE},
            }
        ),
    ),
    "shop.Note.delete": ({"id": ALICE_NOTE}, {"success": True, "id": ALICE_NOTE}),
    "shop.Note.subscribe": ({"id": ALICE_NOTE}, SUBSCRIBED),
    "shop.Note.unsubscribe": ({"id": ALICE_NOTE}, UNSUBSCRIBED),
    # tools: a stream without a model, AllowAny, custom events only
    **{f"tools.{action}": ({}, None) for action in BUILTIN_ACTIONS},
    "tools.add": ({"a": 1, "b": 2}, {"sum": 3}),
    "tools.whoami": (
        {},
        Per(
            {
                who: ByTransport(
                    {"user_id": USERS.get(who), "transport": "websocket"},
                    {"user_id": USERS.get(who), "transport": "http"},
                )
                for who in IDENTITIES
            }
        ),
    ),
    # notify_self reaches the websocket; over HTTP there is no one to notify.
    "tools.progress": (
        {},
        ByTransport(
            {"done": True, "notified": True}, {"done": True, "notified": False}
        ),
    ),
    "tools.aprogress": (
        {},
        ByTransport(
            {"done": True, "notified": True}, {"done": True, "notified": False}
        ),
    ),
}


def test_the_matrix_covers_every_event_of_the_test_bindings():
    from channels_binding.registry import registry

    events = {
        f"{binding.stream}.{action}"
        for binding in registry
        if binding.stream.startswith(("shop.", "tools"))
        for action in {*binding.events, *BUILTIN_ACTIONS}
    }
    assert events == set(MATRIX) == set(REQUESTS)


def expected(event: str, who: str, transport: str) -> tuple[int, Any]:
    """``(status, data)`` the matrix says ``who`` gets for ``event``."""
    cell = MATRIX[event][IDENTITIES.index(who)]
    if isinstance(cell, Live):
        cell = cell.websocket if transport == "websocket" else 405
    if cell != OK:
        return cell, None
    reply = REQUESTS[event][1]
    if isinstance(reply, Per):
        reply = reply.replies[who]
    if isinstance(reply, ByTransport):
        reply = getattr(reply, transport)
    return 200, reply


# -- the two transports ----------------------------------------------------------------


async def over_websocket(user, event: str, data: dict) -> dict:
    client = BindingCommunicator(application, "/ws/")
    if user is not None:
        client.scope["user"] = user
    async with client:
        reply = await client.request(event, data)
    assert reply.pop("request_id") == 1
    return reply


def over_http(user, event: str, data: dict) -> dict:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    response = client.post("/api/events/", {"event": event, "data": data}, "json")
    reply = response.json()
    status = reply["error"]["status"] if "error" in reply else 200
    assert response.status_code == status, reply
    if status == 401:
        assert response.has_header("WWW-Authenticate")
    return reply


async def answer(transport: str, user, event: str, data: dict) -> dict:
    if transport == "websocket":
        return await over_websocket(user, event, data)
    return await sync_to_async(over_http)(user, event, data)


@pytest.fixture
def people(db):
    return make_users()


@pytest.mark.parametrize("transport", ["websocket", "http"])
@pytest.mark.parametrize("event", list(MATRIX))
async def test_access_matrix(people, event, transport):
    data = REQUESTS[event][0]
    wrong = []
    for who in IDENTITIES:
        await database_sync_to_async(reset_rows)()
        before = await database_sync_to_async(snapshot)()
        reply = await answer(transport, people[who], event, data)
        after = await database_sync_to_async(snapshot)()
        status, reply_data = expected(event, who, transport)
        if status == 200:
            outcome = {"event": event, "data": reply_data}
        else:
            error = reply.get("error", {})
            outcome = {
                "event": event,
                "error": {"status": status, "code": CODES[status], "detail": ANY},
            }
            reply = {**reply, "error": {**error, "detail": error.get("detail") and ANY}}
        if outcome != reply:
            wrong.append(f"{who}: expected {outcome}, got {reply}")
        elif status != 200 and after != before:
            wrong.append(f"{who}: refused, yet the database changed")
        elif not changed_only_own_notes(before, after, who):
            wrong.append(f"{who}: another user's note changed")
    assert not wrong, f"{event} over {transport}:\n" + "\n".join(wrong)


class _Any:
    def __eq__(self, other: object) -> bool:
        return True

    def __repr__(self) -> str:
        return "..."


ANY = _Any()


def changed_only_own_notes(before: dict, after: dict, who: str) -> bool:
    def others(rows: list) -> list:
        return [row for row in rows if row["owner_id"] != USERS.get(who)]

    return others(before["notes"]) == others(after["notes"])


# -- the REST routes answer as the events do -------------------------------------------

NOTES_URL, PRODUCTS_URL = "/api/shop/Note/", "/api/shop/Product/"
NOTE_URL, PRODUCT_URL = f"{NOTES_URL}{ALICE_NOTE}/", f"{PRODUCTS_URL}{PRODUCT}/"
QUILL = {"name": "Quill", "price": "2.50"}  # all a PUT requires

#: Each REST route, and the event whose row of MATRIX (over HTTP) it must follow.
REST: list[tuple[str, str, dict | None, str]] = [
    # method  path                        body                event
    ("get",    NOTES_URL,                 None,               "shop.Note.list"),
    ("post",   NOTES_URL,                 {"text": "new"},    "shop.Note.create"),
    ("get",    NOTE_URL,                  None,               "shop.Note.retrieve"),
    ("patch",  NOTE_URL,                  {"text": "edited"}, "shop.Note.update"),
    ("put",    NOTE_URL,                  {"text": "edited"}, "shop.Note.update"),
    ("delete", NOTE_URL,                  None,               "shop.Note.delete"),
    ("post",   f"{NOTES_URL}save/",       REQUESTS["shop.Note.save"][0],
                                          "shop.Note.save"),
    ("post",   f"{NOTES_URL}subscribe/",  {"id": ALICE_NOTE},
                                          "shop.Note.subscribe"),
    ("get",    PRODUCTS_URL,              None,               "shop.Product.list"),
    ("get",    f"{PRODUCTS_URL}?query=ink",
                                          None, "shop.Product.search"),
    ("post",   PRODUCTS_URL,              REQUESTS["shop.Product.create"][0],
                                          "shop.Product.create"),
    ("get",    PRODUCT_URL,               None,               "shop.Product.retrieve"),
    ("patch",  PRODUCT_URL,               {"name": "Quill"},  "shop.Product.update"),
    ("put",    PRODUCT_URL,               QUILL,              "shop.Product.update"),
    ("delete", PRODUCT_URL,               None,               "shop.Product.delete"),
    ("post",   f"{PRODUCTS_URL}restock/", {},
                                          "shop.Product.restock"),
    ("post",   f"{PRODUCTS_URL}admin_only/",
                                          {}, "shop.Product.admin_only"),
    ("get",    "/api/shop/Tag/",          None,               "shop.Tag.list"),
    ("post",   "/api/shop/Tag/",          {"name": "red"},    "shop.Tag.create"),
    ("delete", f"/api/shop/Tag/{TAG}/",   None,               "shop.Tag.delete"),
    ("post",   "/api/tools/add/",         {"a": 1, "b": 2},   "tools.add"),
    ("post",   "/api/tools/whoami/",      {},                 "tools.whoami"),
]  # fmt: skip


def over_rest(user, method: str, path: str, body: dict | None):
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    if body is None:
        return getattr(client, method)(path)
    return getattr(client, method)(path, body, "json")


@pytest.mark.parametrize(
    "method, path, body, event", REST, ids=[f"{m} {p}" for m, p, _, _ in REST]
)
def test_rest_routes_follow_the_matrix(people, method, path, body, event):
    wrong = []
    for who in IDENTITIES:
        reset_rows()
        before = snapshot()
        response = over_rest(people[who], method, path, body)
        status, data = expected(event, who, "http")
        reply = response.json()
        if status == 200:
            outcome = (200, {"event": event, "data": data})
        else:
            outcome = (status, (event, status, CODES[status]))
            error = reply.get("error", {})
            reply = (reply.get("event"), error.get("status"), error.get("code"))
        if outcome != (response.status_code, reply):
            wrong.append(
                f"{who}: expected {outcome}, got {response.status_code} {reply}"
            )
        elif status != 200 and snapshot() != before:
            wrong.append(f"{who}: refused, yet the database changed")
    assert not wrong, f"{method.upper()} {path}:\n" + "\n".join(wrong)


# -- pushes: a watcher hears of its own notes, never of another user's -----------------


def edit_note(key: int, text: str) -> None:
    obj = Note.objects.get(pk=key)
    obj.text = text
    obj.save()


def edit_product(name: str) -> None:
    product = Product.objects.get(pk=PRODUCT)
    product.name = name
    product.save()


async def next_push(client, timeout=3) -> dict:
    """The next push, including one parked while a reply was awaited."""
    if client.pushes:
        return client.pushes.pop(0)
    frame = await client.receive_json_from(timeout)
    assert "request_id" not in frame, frame
    return frame


#: watcher: whose note changes it is told of.
PUSHES = {
    "anonymous": set(),  # it may not even watch notes: 401
    "owner": {"owner"},
    "other": {"other"},
    "staff": {"staff"},
}


async def test_pushes_reach_only_the_notes_owner(people):
    """Every identity watches the notes it may (its list, its own note) and the
    product, and guesses the other notes' keys (404, nothing watched). Then each
    user's note changes in turn, followed by a product change as a marker: the
    hub handles changes in order, so what a watcher hears before the marker is
    all it will hear of the note change."""
    await database_sync_to_async(reset_rows)()
    watchers = {}
    try:
        for who in IDENTITIES:
            client = watchers[who] = BindingCommunicator(application, "/ws/")
            if people[who] is not None:
                client.scope["user"] = people[who]
            await client.connect()
            await client.request("shop.Product.retrieve", {"id": PRODUCT})
            listed = await client.request("shop.Note.list")
            if who == "anonymous":
                assert listed["error"]["status"] == 401
            else:
                assert listed["data"] == page(note(who))
                mine = await client.request("shop.Note.retrieve", {"id": NOTES[who]})
                assert mine["data"] == note(who)
            for owner, key in NOTES.items():
                if owner != who:
                    guess = await client.request("shop.Note.subscribe", {"id": key})
                    status = 401 if who == "anonymous" else 404
                    assert guess["error"]["status"] == status, guess
                    guess = await client.request("shop.Note.retrieve", {"id": key})
                    assert guess["error"]["status"] == status, guess
        for changed in USERS:
            text = f"edited by {changed}"
            await database_sync_to_async(edit_note)(NOTES[changed], text)
            await database_sync_to_async(edit_product)(f"after {changed}")
            for who, client in watchers.items():
                heard = []
                while (push := await next_push(client))["event"] != (
                    "shop.Product.retrieve"
                ):
                    heard.append(push)
                assert push["data"]["name"] == f"after {changed}"
                told = [{"event": "shop.Note.retrieve", "data": note(changed, text)}]
                assert heard == (told if changed in PUSHES[who] else []), who
    finally:
        for client in watchers.values():
            await client.disconnect()


# -- mass assignment: read-only and unlisted fields are ignored -----------------------

PAST = "2000-01-01T00:00:00Z"


def owners_of_new_notes() -> set[int]:
    return set(
        Note.objects.exclude(pk__in=NOTES.values()).values_list("owner_id", flat=True)
    )


#: (event, data alice sends, the reply's data, what must hold in the database)
MASS_ASSIGNMENT = [
    (
        "shop.Note.create",
        {"text": "mine", "owner": BOB, "id": 999, "secret": "planted"},
        {"id": NEW_NOTE, "text": "mine", "owner": ALICE},
        lambda: (
            owners_of_new_notes() == {ALICE}
            and not Note.objects.filter(pk=999).exists()
            and not Note.objects.filter(secret="planted").exists()
        ),
    ),
    (
        "shop.Note.update",
        {"id": ALICE_NOTE, "text": "mine", "owner": BOB, "secret": "planted"},
        {"id": ALICE_NOTE, "text": "mine", "owner": ALICE},
        lambda: (
            Note.objects.get(pk=ALICE_NOTE).owner_id == ALICE
            and Note.objects.get(pk=ALICE_NOTE).secret == "alice's secret"
        ),
    ),
    (
        "shop.Note.save",  # a create: no id
        {"text": "mine", "owner": BOB},
        {"success": True, "id": NEW_NOTE},
        lambda: owners_of_new_notes() == {ALICE},
    ),
    (
        "shop.Note.save",  # an update
        {"id": ALICE_NOTE, "text": "mine", "owner": BOB},
        {"success": True, "id": ALICE_NOTE},
        lambda: Note.objects.get(pk=ALICE_NOTE).owner_id == ALICE,
    ),
    (
        "shop.Product.create",
        {"name": "Eraser", "price": "1.00", "id": 999, "created": PAST},
        {**REQUESTS["shop.Product.create"][1], "name": "Eraser"},
        lambda: (
            not Product.objects.filter(pk=999).exists()
            and not Product.objects.filter(created__year=2000).exists()
        ),
    ),
    (
        "shop.Product.update",
        {"id": PRODUCT, "created": PAST, "category": {"id": 99, "name": "Hacked"}},
        PEN,
        lambda: (
            Product.objects.get(pk=PRODUCT).created == CREATED
            and list(Category.objects.values_list("name", flat=True)) == ["Office"]
        ),
    ),
    (
        "auth.User.update",  # the project's user binding shows id, username, email
        {"id": ALICE, "is_staff": True, "is_superuser": True, "password": "x"},
        {"id": ALICE, "username": "alice", "email": "alice@example.com"},
        lambda: (
            get_user_model()
            .objects.filter(pk=ALICE, is_staff=False, is_superuser=False)
            .get()
            .check_password("pw")
        ),
    ),
]


@pytest.mark.parametrize("transport", ["websocket", "http"])
@pytest.mark.parametrize(
    "event, data, reply, holds",
    MASS_ASSIGNMENT,
    ids=[f"{event} {sorted(data)}" for event, data, _, _ in MASS_ASSIGNMENT],
)
async def test_mass_assignment_is_ignored(people, transport, event, data, reply, holds):
    await database_sync_to_async(reset_rows)()
    bob_before = await database_sync_to_async(
        lambda: list(Note.objects.filter(owner=BOB).values())
    )()
    answered = await answer(transport, people["owner"], event, data)
    assert answered == {"event": event, "data": reply}
    assert await database_sync_to_async(holds)()
    bob_after = await database_sync_to_async(
        lambda: list(Note.objects.filter(owner=BOB).values())
    )()
    assert bob_after == bob_before


# -- ordering and filtering only on what a binding declares ----------------------------

PRODUCT_FILTERS = "category, category__in, in_stock, price, price__gt, price__lt"

#: (event, data) -> the 400's detail; alice asks, over both transports.
UNDECLARED = [
    (
        "shop.Product.list",
        {"ordering": "description"},
        {
            "ordering": [
                "Ordering by 'description' is not allowed. Allowed: created, name, "
                "price."
            ]
        },
    ),
    (
        "shop.Product.list",
        {"ordering": "-category__name"},
        {
            "ordering": [
                "Ordering by 'category__name' is not allowed. Allowed: created, "
                "name, price."
            ]
        },
    ),
    (
        "shop.Product.list",
        {"filters": {"category__name": "Office"}},
        {
            "category__name": [
                "Filtering on 'category__name' is not allowed. Allowed: "
                f"{PRODUCT_FILTERS}."
            ]
        },
    ),
    (
        "shop.Product.search",
        {"query": "ink", "filters": {"tags__name": "blue"}},
        {
            "tags__name": [
                f"Filtering on 'tags__name' is not allowed. Allowed: {PRODUCT_FILTERS}."
            ]
        },
    ),
    (
        "shop.Note.list",
        {"filters": {"owner__password": "x"}},
        {
            "owner__password": [
                "Filtering on 'owner__password' is not allowed. Allowed: none."
            ]
        },
    ),
    (
        "shop.Note.list",
        {"filters": {"owner": BOB}},
        {"owner": ["Filtering on 'owner' is not allowed. Allowed: none."]},
    ),
    (
        "shop.Note.list",
        {"ordering": "owner__password"},
        {"ordering": ["Ordering by 'owner__password' is not allowed. Allowed: none."]},
    ),
    (
        "shop.Note.subscribe",
        {"filters": {"owner": BOB}},
        {"owner": ["Filtering on 'owner' is not allowed. Allowed: none."]},
    ),
    (
        "auth.User.list",
        {"filters": {"password__startswith": "md5"}},
        {
            "password__startswith": [
                "Filtering on 'password__startswith' is not allowed. Allowed: none."
            ]
        },
    ),
    (
        "auth.User.list",
        {"ordering": "password"},
        {"ordering": ["Ordering by 'password' is not allowed. Allowed: username."]},
    ),
]


@pytest.mark.parametrize("transport", ["websocket", "http"])
@pytest.mark.parametrize(
    "event, data, detail",
    UNDECLARED,
    ids=[f"{event} {data}" for event, data, _ in UNDECLARED],
)
async def test_undeclared_or_related_fields_are_a_400(
    people, transport, event, data, detail
):
    await database_sync_to_async(reset_rows)()
    reply = await answer(transport, people["owner"], event, data)
    if transport == "http" and event.endswith(".subscribe"):
        # Over HTTP a subscription is refused before its filters are read.
        assert reply["error"]["status"] == 405
        return
    assert reply == {
        "event": event,
        "error": {"status": 400, "code": "invalid", "detail": detail},
    }


@pytest.mark.parametrize(
    "path, key",
    [
        ("/api/shop/Product/?ordering=description", "ordering"),
        ("/api/shop/Product/?category__name=Office", "category__name"),
        ("/api/shop/Product/?query=ink&tags__name=blue", "tags__name"),
        ("/api/shop/Note/?owner__password=x", "owner__password"),
        ("/api/shop/Note/?ordering=-owner__password", "ordering"),
        ("/api/auth/User/?password__startswith=md5", "password__startswith"),
    ],
)
def test_undeclared_query_parameters_are_a_400(people, path, key):
    response = over_rest(people["owner"], "get", path, None)
    assert response.status_code == 400
    assert list(response.json()["error"]["detail"]) == [key]


# -- client relays to other users' groups ----------------------------------------------

SENT = {"sent": 1}

#: (kind, targets, data) -> (anonymous, owner, another user, staff) with
#: CLIENT_NOTIFICATIONS on; the default hook lets users notify any user or client
#: and only the channels they have joined. Bob's receiving socket joined
#: "room.bob", and so did his sending one. "@bob" is that socket's client id.
TWO = {"sent": 2}
FORGED = {"event": "shop.Note.retrieve", "data": {"id": BOB_NOTE}}
RELAYS = [
    # kind       targets        data         anonymous alice bob   staff
    ("users",    [BOB],         {"hi": 1},   (401,     SENT, SENT, SENT)),
    ("users",    [BOB, ALICE],  {"hi": 1},   (401,     TWO,  TWO,  TWO)),
    ("clients",  ["@bob"],      {"hi": 1},   (401,     SENT, SENT, SENT)),
    ("channels", ["room.bob"],  {"hi": 1},   (401,     403,  SENT, 403)),
    # A relay may not pass for a server event, such as a push of a note.
    ("users",    [BOB],         FORGED,      (401,     400,  400,  400)),
]  # fmt: skip


async def relay_sockets(people) -> tuple[dict, BindingCommunicator]:
    """A sending socket per identity, and bob's receiving socket."""
    senders = {}
    for who in IDENTITIES:
        path = "/ws/?channel=room.bob" if who == "other" else "/ws/"
        senders[who] = BindingCommunicator(application, path)
        if people[who] is not None:
            senders[who].scope["user"] = people[who]
        await senders[who].connect()
    receiver = BindingCommunicator(application, "/ws/?channel=room.bob")
    receiver.scope["user"] = people["other"]
    await receiver.connect()
    assert receiver.connection["channels"] == ["room.bob"]
    return senders, receiver


MARKER = {"event": "notify", "data": {"marker": True}}


async def until_marker(client) -> list[dict]:
    """Every frame before the marker notification (everyone gets it)."""
    frames = []
    while (frame := await next_push(client)) != MARKER:
        frames.append(frame)
    return frames


@pytest.mark.parametrize(
    "kind, targets, data, outcomes",
    RELAYS,
    ids=[f"{kind} {targets} {sorted(data)}" for kind, targets, data, _ in RELAYS],
)
async def test_relays_when_enabled(people, kind, targets, data, outcomes):
    with override_settings(CHANNELS_BINDING={**ROOT, "CLIENT_NOTIFICATIONS": True}):
        senders, receiver = await relay_sockets(people)
        try:
            bob_socket = receiver.connection["client_id"]
            targets = [bob_socket if t == "@bob" else t for t in targets]
            for who, outcome in zip(IDENTITIES, outcomes, strict=True):
                sender = senders[who]
                reply = await sender.request(
                    f"notify.{kind}", {"targets": targets, "data": data}
                )
                if isinstance(outcome, int):
                    assert reply["error"]["status"] == outcome, (who, reply)
                else:
                    assert reply["data"] == outcome, (who, reply)
                await notify.aall({"marker": True})
                received = await until_marker(receiver)
                if isinstance(outcome, int):
                    assert received == [], who
                else:
                    assert received == [
                        {
                            "event": "notify",
                            "data": data,
                            "sender": {
                                "user_id": USERS[who],
                                "client_id": sender.connection["client_id"],
                            },
                        }
                    ], who
                for client in senders.values():
                    await until_marker(client)
        finally:
            for client in [*senders.values(), receiver]:
                await client.disconnect()


@pytest.mark.parametrize("kind", ["users", "channels", "clients"])
async def test_relays_do_not_exist_when_disabled(people, kind):
    senders, receiver = await relay_sockets(people)
    try:
        for who, sender in senders.items():
            targets = ["room.bob"] if kind == "channels" else [BOB]
            if kind == "clients":
                targets = [receiver.connection["client_id"]]
            reply = await sender.request(
                f"notify.{kind}", {"targets": targets, "data": {"hi": 1}}
            )
            assert reply["error"]["status"] == 404, (who, reply)
            assert reply["error"]["code"] == "unknown_event"
        await notify.aall({"marker": True})
        assert await until_marker(receiver) == []
    finally:
        for client in [*senders.values(), receiver]:
            await client.disconnect()


@pytest.mark.parametrize("enabled", [False, True])
@pytest.mark.parametrize("kind", ["users", "channels", "clients"])
def test_relays_are_websocket_only(people, kind, enabled):
    settings = {**ROOT, "CLIENT_NOTIFICATIONS": enabled}
    with override_settings(CHANNELS_BINDING=settings):
        for who in IDENTITIES:
            frame = {"targets": [BOB], "data": {"hi": 1}}
            reply = over_http(people[who], f"notify.{kind}", frame)
            assert reply["error"]["code"] == "unknown_event", (who, reply)
