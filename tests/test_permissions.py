"""DRF permission classes on binding events, over a websocket, with exact outcomes.

The bindings under test are defined by a module-scoped fixture on their own
``perm.*`` streams and unregistered when this module is done, so they are never in
the registry while another module's tests run.
"""

import io
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import override_settings
from rest_framework.permissions import (
    SAFE_METHODS,
    AllowAny,
    BasePermission,
    DjangoModelPermissions,
    DjangoModelPermissionsOrAnonReadOnly,
    IsAdminUser,
    IsAuthenticated,
    IsAuthenticatedOrReadOnly,
)

from channels_binding.bindings import AsyncBinding, bind
from channels_binding.registry import registry
from tests.shop.models import Product

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = {"BINDINGS_MODULES": ["tests.root_bindings"]}
FIELDS = ["id", "name", "price"]

NOT_AUTHENTICATED = "Authentication credentials were not provided."
DENIED = "You do not have permission to perform this action."
PUBLIC_ONLY = "Only products whose name starts with 'public' may be used."


class ReadOnly(BasePermission):
    def has_permission(self, request, view):
        return request.method in SAFE_METHODS


class PublicOnly(BasePermission):
    """Object-level: only products whose name starts with "public"."""

    message = PUBLIC_ONLY
    code = "not_public"

    def has_object_permission(self, request, view, obj):
        return obj.name.startswith("public")


class RecordsMethod(BasePermission):
    """Allows everything; remembers the method each request was seen as."""

    seen: list = []

    def has_permission(self, request, view):
        if request.request_id is not None:  # not a push's own permission check
            RecordsMethod.seen.append((view.action, request.method))
        return True


STREAMS = []


@pytest.fixture(scope="module", autouse=True)
def permission_bindings():
    """Register the ``perm.*`` bindings for this module only."""
    before = {binding.stream: binding for binding in registry}

    def product_binding(name, **attrs):
        attrs.setdefault("model", Product)
        attrs.setdefault("fields", FIELDS)
        attrs.setdefault("search_fields", ["name"])
        attrs["stream"] = f"perm.{name}"
        attrs["__module__"] = __name__
        attrs["__qualname__"] = f"{name.title()}Binding"
        type(f"{name.title()}Binding", (AsyncBinding,), attrs)
        STREAMS.append(f"perm.{name}")

    try:
        product_binding(
            "model",
            permission_classes=[DjangoModelPermissions],
            touch=bind("touch")(lambda self, request: {"touched": True}),
            peek=bind("peek", method="GET")(lambda self, request: {"peeked": True}),
            purge=bind("purge", method="DELETE")(
                lambda self, request: {"purged": True}
            ),
        )
        product_binding(
            "anonread", permission_classes=[DjangoModelPermissionsOrAnonReadOnly]
        )
        product_binding(
            "public", permission_classes=[IsAuthenticatedOrReadOnly, PublicOnly]
        )
        product_binding(
            "hidden",
            permission_classes=[IsAuthenticatedOrReadOnly],
            get_queryset=lambda self: Product.objects.filter(name__startswith="public"),
        )
        product_binding("and", permission_classes=[IsAuthenticated & IsAdminUser])
        product_binding("or", permission_classes=[IsAdminUser | ReadOnly])
        product_binding("not", permission_classes=[~IsAdminUser])
        product_binding("adminorpublic", permission_classes=[IsAdminUser | PublicOnly])
        product_binding(
            "byaction",
            permission_classes=[IsAuthenticated],
            permission_classes_by_action={
                "delete": [IsAdminUser],
                "shout": [IsAdminUser],
                "opened": [IsAdminUser],
            },
            shout=bind("shout")(lambda self, request: {"shouted": True}),
            opened=bind("opened", permission_classes=[AllowAny])(
                lambda self, request: {"opened": True}
            ),
            plain=bind("plain")(lambda self, request: {"plain": True}),
        )
        # No permission_classes: DEFAULT_PERMISSION_CLASSES applies.
        product_binding(
            "default",
            read=bind("read", method="GET")(lambda self, request: {"read": True}),
            write=bind("write")(lambda self, request: {"written": True}),
        )
        product_binding("methods", permission_classes=[RecordsMethod])

        yield
    finally:
        for stream in STREAMS:
            registry.unregister(stream)
    after = {binding.stream: binding for binding in registry}
    assert after == before, "perm.* bindings leaked into the registry"


# -- helpers -------------------------------------------------------------------


def assert_error(reply, event, status, code, detail):
    assert reply == {
        "event": event,
        "error": {"status": status, "code": code, "detail": detail},
        "request_id": reply.get("request_id"),
    }
    assert "request_id" in reply


def make_products(*names):
    return {
        name: Product.objects.create(name=name, price=Decimal("1.50")) for name in names
    }


@sync_to_async
def products(*names):
    return make_products(*names)


@sync_to_async
def state():
    """Every product row, to compare before and after a refused write."""
    return sorted(Product.objects.values_list("pk", "name", "price"))


@sync_to_async
def grant(user, *codenames):
    """Give ``user`` shop permissions; returns a fresh instance (Django caches a
    user's permissions on the instance)."""
    perms = list(
        Permission.objects.filter(
            content_type__app_label="shop", codename__in=codenames
        )
    )
    assert sorted(p.codename for p in perms) == sorted(codenames)
    user.user_permissions.add(*perms)
    return get_user_model().objects.get(pk=user.pk)


def row(product, **changes):
    data = {"id": product.pk, "name": product.name, "price": f"{product.price:.2f}"}
    return {**data, **changes}


WHO = ["anonymous", "user", "staff"]


# -- DjangoModelPermissions ----------------------------------------------------


async def write_requests(client, stream, pen):
    """Every write, each refused or allowed, in a fixed order."""
    return {
        "create": await client.request(
            f"{stream}.create", {"name": "Cup", "price": "2.00"}
        ),
        "update": await client.request(
            f"{stream}.update", {"id": pen.pk, "name": "Renamed"}
        ),
        "save-update": await client.request(
            f"{stream}.save", {"id": pen.pk, "name": "Saved"}
        ),
        "save-create": await client.request(
            f"{stream}.save", {"name": "Mug", "price": "3.00"}
        ),
        "delete": await client.request(f"{stream}.delete", {"id": pen.pk}),
    }


async def test_model_permissions_without_any_perm_reads_but_never_writes(
    communicator, user
):
    pen = (await products("Pen"))["Pen"]
    before = await state()
    async with communicator(user) as client:
        retrieve = await client.request("perm.model.retrieve", {"id": pen.pk})
        listed = await client.request("perm.model.list")
        search = await client.request("perm.model.search", {"query": "Pen"})
        peek = await client.request("perm.model.peek")
        writes = await write_requests(client, "perm.model", pen)
        touch = await client.request("perm.model.touch")
        purge = await client.request("perm.model.purge")
    assert retrieve["data"] == row(pen)
    assert listed["data"] == {"page": 1, "limit": 25, "count": 1, "rows": [row(pen)]}
    assert search["data"]["rows"] == [row(pen)]
    assert peek["data"] == {"peeked": True}
    for action, reply in writes.items():
        event = "perm.model." + action.partition("-")[0]
        assert_error(reply, event, 403, "permission_denied", DENIED)
    assert_error(touch, "perm.model.touch", 403, "permission_denied", DENIED)
    assert_error(purge, "perm.model.purge", 403, "permission_denied", DENIED)
    assert await state() == before


async def test_model_permissions_add_allows_create_and_creating_save_only(
    communicator, user
):
    pen = (await products("Pen"))["Pen"]
    alice = await grant(user, "add_product")
    async with communicator(alice) as client:
        created = await client.request(
            "perm.model.create", {"name": "Cup", "price": "2.00"}
        )
        save_new = await client.request(
            "perm.model.save", {"name": "Mug", "price": "3.00"}
        )
        # An id no object has: the save creates, so it needs add, not change.
        save_unknown = await client.request(
            "perm.model.save", {"id": 999999, "name": "Jug", "price": "4.00"}
        )
        before = await state()
        update = await client.request(
            "perm.model.update", {"id": pen.pk, "name": "Renamed"}
        )
        save_existing = await client.request(
            "perm.model.save", {"id": pen.pk, "name": "Saved"}
        )
        delete = await client.request("perm.model.delete", {"id": pen.pk})
        touch = await client.request("perm.model.touch")
        purge = await client.request("perm.model.purge")
    cup = await sync_to_async(Product.objects.get)(name="Cup")
    mug = await sync_to_async(Product.objects.get)(name="Mug")
    jug = await sync_to_async(Product.objects.get)(name="Jug")
    assert created["data"] == row(cup)
    assert save_new["data"] == {"success": True, "id": mug.pk}
    assert save_unknown["data"] == {"success": True, "id": jug.pk}
    assert jug.pk != 999999
    assert_error(update, "perm.model.update", 403, "permission_denied", DENIED)
    assert_error(save_existing, "perm.model.save", 403, "permission_denied", DENIED)
    assert_error(delete, "perm.model.delete", 403, "permission_denied", DENIED)
    assert touch["data"] == {"touched": True}  # a POST custom event needs add
    assert_error(purge, "perm.model.purge", 403, "permission_denied", DENIED)
    assert await state() == before


async def test_model_permissions_change_allows_update_and_updating_save_only(
    communicator, user
):
    pen = (await products("Pen"))["Pen"]
    alice = await grant(user, "change_product")
    async with communicator(alice) as client:
        update = await client.request(
            "perm.model.update", {"id": pen.pk, "name": "Renamed"}
        )
        save = await client.request("perm.model.save", {"id": pen.pk, "price": "9.00"})
        hashed = await client.request(f"perm.model.save#{pen.pk}", {"name": "Hashed"})
        before = await state()
        create = await client.request(
            "perm.model.create", {"name": "Cup", "price": "2.00"}
        )
        save_new = await client.request(
            "perm.model.save", {"name": "Mug", "price": "3.00"}
        )
        delete = await client.request("perm.model.delete", {"id": pen.pk})
    assert update["data"] == row(pen, name="Renamed")
    assert save["data"] == {"success": True, "id": pen.pk}
    assert hashed["data"] == {"success": True, "id": pen.pk}
    await sync_to_async(pen.refresh_from_db)()
    assert (pen.name, pen.price) == ("Hashed", Decimal("9.00"))
    assert_error(create, "perm.model.create", 403, "permission_denied", DENIED)
    assert_error(save_new, "perm.model.save", 403, "permission_denied", DENIED)
    assert_error(delete, "perm.model.delete", 403, "permission_denied", DENIED)
    assert await state() == before


async def test_model_permissions_delete_allows_delete_only(communicator, user):
    made = await products("Pen", "Pencil")
    alice = await grant(user, "delete_product")
    async with communicator(alice) as client:
        delete = await client.request("perm.model.delete", {"id": made["Pen"].pk})
        purge = await client.request("perm.model.purge")
        before = await state()
        writes = await write_requests(client, "perm.model", made["Pencil"])
    assert delete["data"] == {"success": True, "id": made["Pen"].pk}
    assert purge["data"] == {"purged": True}
    assert before == [(made["Pencil"].pk, "Pencil", Decimal("1.50"))]
    for action in ("create", "update", "save-update", "save-create"):
        event = "perm.model." + action.partition("-")[0]
        assert_error(writes[action], event, 403, "permission_denied", DENIED)
    # the delete of the pencil was allowed
    assert writes["delete"]["data"] == {"success": True, "id": made["Pencil"].pk}
    assert await state() == []


async def test_model_permissions_are_read_when_the_connection_opens(communicator, user):
    """The connection's user is one instance, whose permissions Django caches: a
    permission granted later applies to connections opened later."""
    await products("Pen")
    async with communicator(user) as early:
        refused = await early.request("perm.model.touch")
        await grant(user, "add_product")
        still_refused = await early.request("perm.model.touch")
    fresh = await sync_to_async(get_user_model().objects.get)(pk=user.pk)
    async with communicator(fresh) as late:
        allowed = await late.request("perm.model.touch")
    assert_error(refused, "perm.model.touch", 403, "permission_denied", DENIED)
    assert_error(still_refused, "perm.model.touch", 403, "permission_denied", DENIED)
    assert allowed["data"] == {"touched": True}


async def test_model_permissions_refuse_anonymous_even_reads(communicator):
    pen = (await products("Pen"))["Pen"]
    before = await state()
    async with communicator() as client:
        retrieve = await client.request("perm.model.retrieve", {"id": pen.pk})
        listed = await client.request("perm.model.list")
        writes = await write_requests(client, "perm.model", pen)
    assert_error(
        retrieve, "perm.model.retrieve", 401, "not_authenticated", NOT_AUTHENTICATED
    )
    assert_error(listed, "perm.model.list", 401, "not_authenticated", NOT_AUTHENTICATED)
    for action, reply in writes.items():
        event = "perm.model." + action.partition("-")[0]
        assert_error(reply, event, 401, "not_authenticated", NOT_AUTHENTICATED)
    assert await state() == before


async def test_model_permissions_or_anon_read_only(communicator, user):
    pen = (await products("Pen"))["Pen"]
    before = await state()
    async with communicator() as anonymous:
        retrieve = await anonymous.request("perm.anonread.retrieve", {"id": pen.pk})
        writes = await write_requests(anonymous, "perm.anonread", pen)
    assert retrieve["data"] == row(pen)
    for action, reply in writes.items():
        event = "perm.anonread." + action.partition("-")[0]
        assert_error(reply, event, 401, "not_authenticated", NOT_AUTHENTICATED)
    # a signed-in user without perms is refused the same writes with a 403
    async with communicator(user) as alice:
        create = await alice.request(
            "perm.anonread.create", {"name": "Cup", "price": "2.00"}
        )
    assert_error(create, "perm.anonread.create", 403, "permission_denied", DENIED)
    assert await state() == before


async def test_each_action_is_seen_as_its_http_method(communicator, user):
    pen = (await products("Pen"))["Pen"]
    RecordsMethod.seen.clear()
    async with communicator(user) as client:
        for event, data in [
            ("retrieve", {"id": pen.pk}),
            ("list", {}),
            ("search", {"query": "Pen"}),
            ("subscribe", {"id": pen.pk}),
            ("unsubscribe", {"id": pen.pk}),
            ("create", {"name": "Cup", "price": "2.00"}),
            ("update", {"id": pen.pk, "name": "Pen 2"}),
            ("save", {"id": pen.pk, "name": "Pen 3"}),
            ("save", {"name": "Mug", "price": "3.00"}),
            ("save", {"id": 999999, "name": "Jug", "price": "3.00"}),
            ("delete", {"id": pen.pk}),
        ]:
            reply = await client.request(f"perm.methods.{event}", data)
            assert "data" in reply, reply
    assert RecordsMethod.seen == [
        ("retrieve", "GET"),
        ("list", "GET"),
        ("search", "GET"),
        ("subscribe", "GET"),
        ("unsubscribe", "GET"),
        ("create", "POST"),
        ("update", "PATCH"),
        ("save", "PUT"),
        ("save", "POST"),
        ("save", "POST"),
        ("delete", "DELETE"),
    ]


# -- object permissions --------------------------------------------------------


async def test_object_permission_refuses_forbidden_objects_with_403(communicator, user):
    made = await products("public pen", "secret plan")
    public, secret = made["public pen"], made["secret plan"]
    async with communicator(user) as client:
        before = await state()
        refused = {
            "retrieve": await client.request("perm.public.retrieve", {"id": secret.pk}),
            f"retrieve#{secret.pk}": await client.request(
                f"perm.public.retrieve#{secret.pk}"
            ),
            "update": await client.request(
                "perm.public.update", {"id": secret.pk, "name": "public now"}
            ),
            "save": await client.request(
                "perm.public.save", {"id": secret.pk, "name": "public now"}
            ),
            "delete": await client.request("perm.public.delete", {"id": secret.pk}),
            "subscribe": await client.request(
                "perm.public.subscribe", {"id": secret.pk}
            ),
        }
        assert await state() == before
        retrieve = await client.request("perm.public.retrieve", {"id": public.pk})
        listed = await client.request("perm.public.list")
        update = await client.request(
            "perm.public.update", {"id": public.pk, "price": "5.00"}
        )
        save = await client.request(
            "perm.public.save", {"id": public.pk, "name": "public pencil"}
        )
        subscribe = await client.request("perm.public.subscribe", {"id": public.pk})
        delete = await client.request("perm.public.delete", {"id": public.pk})
    for action, reply in refused.items():
        assert_error(
            reply, f"perm.public.{action}", 403, "permission_denied", PUBLIC_ONLY
        )
    assert retrieve["data"] == row(public)
    # Object permissions are not applied to lists (as in DRF): filter in
    # get_queryset() to hide rows.
    assert [r["name"] for r in listed["data"]["rows"]] == ["public pen", "secret plan"]
    assert update["data"] == row(public, price="5.00")
    assert save["data"] == {"success": True, "id": public.pk}
    assert subscribe["data"] == {"subscribed": True}
    assert delete["data"] == {"success": True, "id": public.pk}
    assert await state() == [(secret.pk, "secret plan", Decimal("1.50"))]


async def test_object_permission_refuses_anonymous_with_401(communicator):
    made = await products("public pen", "secret plan")
    async with communicator() as client:
        secret = await client.request(
            "perm.public.retrieve", {"id": made["secret plan"].pk}
        )
        public = await client.request(
            "perm.public.retrieve", {"id": made["public pen"].pk}
        )
    assert_error(secret, "perm.public.retrieve", 401, "not_authenticated", PUBLIC_ONLY)
    assert public["data"] == row(made["public pen"])


async def test_refused_subscribe_watches_nothing(communicator, user):
    made = await products("public pen", "secret plan")
    public, secret = made["public pen"], made["secret plan"]

    def rename(product, name):
        product.name = name
        product.save()

    async with communicator(user) as client:
        refused = await client.request("perm.public.subscribe", {"id": secret.pk})
        allowed = await client.request("perm.public.subscribe#mine", {"id": public.pk})
        await sync_to_async(rename)(secret, "secret plan v2")
        # The marker: a change that must be pushed comes after one that must not.
        await sync_to_async(rename)(public, "public pen v2")
        push = await client.receive_json_from(3)
        # An object that becomes forbidden is pushed as gone, not as its new data.
        await sync_to_async(rename)(public, "secret pen")
        gone = await client.receive_json_from(3)
        assert await client.receive_nothing(0.1)
    assert_error(
        refused, "perm.public.subscribe", 403, "permission_denied", PUBLIC_ONLY
    )
    assert allowed["data"] == {"subscribed": True}
    assert push == {
        "event": "perm.public.retrieve#mine",
        "data": row(public, name="public pen v2"),
    }
    assert gone == {"event": "perm.public.delete#mine", "data": {"id": public.pk}}


async def test_hiding_objects_in_get_queryset_answers_404(communicator, user):
    made = await products("public pen", "secret plan")
    public, secret = made["public pen"], made["secret plan"]
    not_found = {"status": 404, "code": "not_found", "detail": "Not found."}
    async with communicator(user) as client:
        before = await state()
        refused = {
            "retrieve": await client.request("perm.hidden.retrieve", {"id": secret.pk}),
            "update": await client.request(
                "perm.hidden.update", {"id": secret.pk, "name": "x"}
            ),
            "delete": await client.request("perm.hidden.delete", {"id": secret.pk}),
            "subscribe": await client.request(
                "perm.hidden.subscribe", {"id": secret.pk}
            ),
        }
        assert await state() == before
        listed = await client.request("perm.hidden.list")
        retrieve = await client.request("perm.hidden.retrieve", {"id": public.pk})
        # save cannot see the secret row, so it creates a new one
        save = await client.request(
            "perm.hidden.save", {"id": secret.pk, "name": "public copy", "price": 2}
        )
    for action, reply in refused.items():
        assert reply == {
            "event": f"perm.hidden.{action}",
            "error": not_found,
            "request_id": reply["request_id"],
        }
    assert listed["data"]["rows"] == [row(public)]
    assert retrieve["data"] == row(public)
    copy = await sync_to_async(Product.objects.get)(name="public copy")
    assert save["data"] == {"success": True, "id": copy.pk}
    assert await state() == sorted(before + [(copy.pk, "public copy", Decimal("2.00"))])


# -- composition ---------------------------------------------------------------

OK = "ok"
# (stream, who, action) -> OK or (status, code, detail)
COMPOSED = [
    # IsAuthenticated & IsAdminUser
    ("and", "anonymous", "retrieve", (401, "not_authenticated", NOT_AUTHENTICATED)),
    ("and", "anonymous", "create", (401, "not_authenticated", NOT_AUTHENTICATED)),
    ("and", "user", "retrieve", (403, "permission_denied", DENIED)),
    ("and", "user", "create", (403, "permission_denied", DENIED)),
    ("and", "user", "delete", (403, "permission_denied", DENIED)),
    ("and", "staff", "retrieve", OK),
    ("and", "staff", "create", OK),
    ("and", "staff", "delete", OK),
    # IsAdminUser | ReadOnly
    ("or", "anonymous", "retrieve", OK),
    ("or", "anonymous", "list", OK),
    ("or", "anonymous", "create", (401, "not_authenticated", NOT_AUTHENTICATED)),
    ("or", "anonymous", "delete", (401, "not_authenticated", NOT_AUTHENTICATED)),
    ("or", "user", "retrieve", OK),
    ("or", "user", "create", (403, "permission_denied", DENIED)),
    ("or", "user", "update", (403, "permission_denied", DENIED)),
    ("or", "user", "delete", (403, "permission_denied", DENIED)),
    ("or", "staff", "create", OK),
    ("or", "staff", "update", OK),
    ("or", "staff", "delete", OK),
    # ~IsAdminUser, evaluated as DRF does: NOT inverts has_object_permission too,
    # and BasePermission's is True, so every object action is refused to all.
    ("not", "anonymous", "list", OK),
    ("not", "anonymous", "create", OK),
    ("not", "anonymous", "retrieve", (401, "not_authenticated", NOT_AUTHENTICATED)),
    ("not", "user", "list", OK),
    ("not", "user", "create", OK),
    ("not", "user", "retrieve", (403, "permission_denied", DENIED)),
    ("not", "user", "update", (403, "permission_denied", DENIED)),
    ("not", "user", "delete", (403, "permission_denied", DENIED)),
    ("not", "staff", "list", (403, "permission_denied", DENIED)),
    ("not", "staff", "create", (403, "permission_denied", DENIED)),
    ("not", "staff", "retrieve", (403, "permission_denied", DENIED)),
    # IsAdminUser | PublicOnly, object level: staff see all, others public only
    ("adminorpublic", "anonymous", "retrieve", OK),
    (
        "adminorpublic",
        "anonymous",
        "retrieve-secret",
        (401, "not_authenticated", NOT_AUTHENTICATED),
    ),
    ("adminorpublic", "user", "update", OK),
    ("adminorpublic", "user", "retrieve-secret", (403, "permission_denied", DENIED)),
    ("adminorpublic", "user", "delete-secret", (403, "permission_denied", DENIED)),
    ("adminorpublic", "staff", "retrieve-secret", OK),
    ("adminorpublic", "staff", "delete-secret", OK),
]


def action_data(action, made):
    target = made["secret plan" if action.endswith("-secret") else "public pen"]
    return {
        "retrieve": {"id": target.pk},
        "list": {},
        "create": {"name": "public new", "price": "2.00"},
        "update": {"id": target.pk, "name": "public renamed"},
        "delete": {"id": target.pk},
    }[action.partition("-")[0]], target


@pytest.mark.parametrize(
    "stream,who,action,expected",
    COMPOSED,
    ids=[f"{s}-{w}-{a}" for s, w, a, _ in COMPOSED],
)
async def test_composed_permissions(
    communicator, user, staff_user, stream, who, action, expected
):
    made = await products("public pen", "secret plan")
    data, target = action_data(action, made)
    event = f"perm.{stream}.{action.partition('-')[0]}"
    before = await state()
    client_user = {"anonymous": None, "user": user, "staff": staff_user}[who]
    async with communicator(client_user) as client:
        reply = await client.request(event, data)
    after = await state()
    if expected != OK:
        assert_error(reply, event, *expected)
        assert after == before
        return
    verb = action.partition("-")[0]
    if verb == "retrieve":
        assert reply["data"] == row(target)
    elif verb == "list":
        assert reply["data"]["count"] == 2
    elif verb == "create":
        new = await sync_to_async(Product.objects.get)(name="public new")
        assert reply["data"] == row(new)
        assert len(after) == 3
    elif verb == "update":
        assert reply["data"] == row(target, name="public renamed")
        assert (target.pk, "public renamed", Decimal("1.50")) in after
    else:
        assert reply["data"] == {"success": True, "id": target.pk}
        assert [pk for pk, _, _ in after] == [
            pk for pk, _, _ in before if pk != target.pk
        ]
    if verb in ("retrieve", "list"):
        assert after == before


# -- per-action and per-event permission classes -------------------------------


async def test_permission_classes_by_action_overrides_one_action(
    communicator, user, staff_user
):
    made = await products("Pen", "Pencil")
    pen, pencil = made["Pen"], made["Pencil"]
    async with communicator(user) as alice:
        retrieve = await alice.request("perm.byaction.retrieve", {"id": pen.pk})
        update = await alice.request(
            "perm.byaction.update", {"id": pen.pk, "name": "Pen 2"}
        )
        before = await state()
        delete = await alice.request("perm.byaction.delete", {"id": pen.pk})
        assert await state() == before
    async with communicator() as anonymous:
        anon_retrieve = await anonymous.request(
            "perm.byaction.retrieve", {"id": pen.pk}
        )
        anon_delete = await anonymous.request("perm.byaction.delete", {"id": pen.pk})
    async with communicator(staff_user) as staff:
        staff_delete = await staff.request("perm.byaction.delete", {"id": pencil.pk})
    assert retrieve["data"] == row(pen)
    assert update["data"] == row(pen, name="Pen 2")
    assert_error(delete, "perm.byaction.delete", 403, "permission_denied", DENIED)
    # IsAuthenticated (permission_classes) for retrieve: even reads need a user
    assert_error(
        anon_retrieve,
        "perm.byaction.retrieve",
        401,
        "not_authenticated",
        NOT_AUTHENTICATED,
    )
    assert_error(
        anon_delete,
        "perm.byaction.delete",
        401,
        "not_authenticated",
        NOT_AUTHENTICATED,
    )
    assert staff_delete["data"] == {"success": True, "id": pencil.pk}
    assert await state() == [(pen.pk, "Pen 2", Decimal("1.50"))]


async def test_custom_event_permission_classes(communicator, user, staff_user):
    async with (
        communicator() as anonymous,
        communicator(user) as alice,
        communicator(staff_user) as staff,
    ):
        replies = {}
        for name, client in [
            ("anonymous", anonymous),
            ("user", alice),
            ("staff", staff),
        ]:
            for event in ("shout", "opened", "plain"):
                replies[name, event] = await client.request(f"perm.byaction.{event}")
    # by action name: IsAdminUser
    assert_error(
        replies["anonymous", "shout"],
        "perm.byaction.shout",
        401,
        "not_authenticated",
        NOT_AUTHENTICATED,
    )
    assert_error(
        replies["user", "shout"],
        "perm.byaction.shout",
        403,
        "permission_denied",
        DENIED,
    )
    assert replies["staff", "shout"]["data"] == {"shouted": True}
    # @bind(permission_classes=[AllowAny]) wins over permission_classes_by_action
    for name in WHO:
        assert replies[name, "opened"]["data"] == {"opened": True}
    # neither: the binding's IsAuthenticated
    assert_error(
        replies["anonymous", "plain"],
        "perm.byaction.plain",
        401,
        "not_authenticated",
        NOT_AUTHENTICATED,
    )
    assert replies["user", "plain"]["data"] == {"plain": True}
    assert replies["staff", "plain"]["data"] == {"plain": True}


async def test_get_and_post_custom_events_under_default_permissions(communicator, user):
    async with communicator() as anonymous, communicator(user) as alice:
        anon_read = await anonymous.request("perm.default.read")
        anon_write = await anonymous.request("perm.default.write")
        user_read = await alice.request("perm.default.read")
        user_write = await alice.request("perm.default.write")
    assert anon_read["data"] == {"read": True}
    assert_error(
        anon_write, "perm.default.write", 401, "not_authenticated", NOT_AUTHENTICATED
    )
    assert user_read["data"] == {"read": True}
    assert user_write["data"] == {"written": True}


# -- messages ------------------------------------------------------------------


async def test_permission_message_is_the_detail_and_the_code_stays_stable(
    communicator, user
):
    """``PublicOnly`` sets ``message`` and ``code``: the message is the detail; the
    frame's code stays the protocol's ``permission_denied``."""
    secret = (await products("secret plan"))["secret plan"]
    async with communicator(user) as client:
        reply = await client.request(
            "perm.public.update", {"id": secret.pk, "price": 0}
        )
        default = await client.request("perm.and.list")
    assert reply["error"] == {
        "status": 403,
        "code": "permission_denied",
        "detail": PUBLIC_ONLY,
    }
    assert default["error"] == {
        "status": 403,
        "code": "permission_denied",
        "detail": DENIED,
    }


# -- settings ------------------------------------------------------------------


async def test_default_permission_classes_setting(communicator, user):
    pen = (await products("Pen"))["Pen"]
    setting = {
        **ROOT,
        "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    }
    with override_settings(CHANNELS_BINDING=setting):
        async with communicator() as anonymous, communicator(user) as alice:
            anon_retrieve = await anonymous.request(
                "perm.default.retrieve", {"id": pen.pk}
            )
            anon_read = await anonymous.request("perm.default.read")
            # a binding with its own permission_classes is not affected
            anon_or = await anonymous.request("perm.or.retrieve", {"id": pen.pk})
            user_retrieve = await alice.request("perm.default.retrieve", {"id": pen.pk})
    async with communicator() as anonymous:
        restored = await anonymous.request("perm.default.retrieve", {"id": pen.pk})
    assert_error(
        anon_retrieve,
        "perm.default.retrieve",
        401,
        "not_authenticated",
        NOT_AUTHENTICATED,
    )
    assert_error(
        anon_read, "perm.default.read", 401, "not_authenticated", NOT_AUTHENTICATED
    )
    assert anon_or["data"] == row(pen)
    assert user_retrieve["data"] == row(pen)
    assert restored["data"] == row(pen)


# -- the bindings command --------------------------------------------------------


def test_bindings_command_lists_the_classes_each_event_uses():
    out = io.StringIO()
    call_command("bindings", stdout=out, no_color=True)
    lines = out.getvalue().splitlines()
    p = "rest_framework.permissions."
    here = f"{__name__}."
    for line in [
        f"  perm.and.retrieve  [({p}IsAuthenticated & {p}IsAdminUser)]",
        f"  perm.or.create  [({p}IsAdminUser | {here}ReadOnly)]",
        f"  perm.not.delete  [~{p}IsAdminUser]",
        f"  perm.byaction.delete  [{p}IsAdminUser]",
        f"  perm.byaction.update  [{p}IsAuthenticated]",
        f"  perm.byaction.shout  [{p}IsAdminUser]",
        f"  perm.byaction.opened  [{p}AllowAny]",
        f"  perm.model.touch  [{p}DjangoModelPermissions]",
        f"  perm.public.retrieve  [{p}IsAuthenticatedOrReadOnly, {here}PublicOnly]",
        f"  perm.default.write  [{p}IsAuthenticatedOrReadOnly]",
    ]:
        assert line in lines, (line, lines)
