"""Requests that wait for the database thread together share one trip to it
(batching.py), concurrent retrieves share one query, and read-only serializers
reuse their fields (serializers.py). None of it may change an answer.

To put requests in one trip for sure, a ``batch.hold`` request keeps the database
thread busy until every request of the test waits for it; they then all go in the
next trip. Queries are counted on the database thread's own connection.
"""

import asyncio
import contextvars
import itertools
import re
import threading
import time
from urllib.parse import parse_qs

import pytest
from asgiref.local import Local
from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from django.db import connection
from django.urls import path
from django.utils import translation
from rest_framework import serializers
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated

from channels_binding.bindings import AsyncBinding, bind
from channels_binding.consumers import AsyncConsumer
from channels_binding.events.batching import Batcher
from channels_binding.registry import registry
from channels_binding.testing import BindingCommunicator
from tests.shop.models import Category, Note, Product, Tag
from tests.test_live import orm

pytestmark = pytest.mark.django_db(transaction=True)


class Hold:
    """The state of ``batch.hold`` (its handler runs on the database thread)."""

    def __init__(self):
        self.started = threading.Event()
        self.release = threading.Event()
        self.counting = False
        self.sql = []

    def count(self, execute, sql, params, many, context):
        if self.counting:
            self.sql.append(sql)
        return execute(sql, params, many, context)


HOLD = Hold()


def count_on_this_thread(execute, sql, params, many, context):
    return HOLD.count(execute, sql, params, many, context)


class NotSecret(BasePermission):
    message = "Secret products are not shown."

    def has_object_permission(self, request, view, obj):
        return not obj.name.startswith("secret")


class WhoSerializer(serializers.ModelSerializer):
    """Its output depends on the serializer's context."""

    seen_by = serializers.SerializerMethodField()

    class Meta:
        model = Product
        fields = ["id", "name", "seen_by"]

    def get_seen_by(self, obj):
        return self.context["request"].user.username or None


class StaffSeeDescriptionSerializer(serializers.ModelSerializer):
    """DRF's "dynamically modifying fields" recipe: fields depend on the user."""

    class Meta:
        model = Product
        fields = ["id", "name", "description"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is None or not request.user.is_staff:
            self.fields.pop("description")


class TagWhoSerializer(serializers.ModelSerializer):
    seen_by = serializers.SerializerMethodField()

    class Meta:
        model = Tag
        fields = ["name", "seen_by"]

    def get_seen_by(self, obj):
        return self.context["request"].user.username or None


class NestedWhoSerializer(serializers.ModelSerializer):
    """Nested serializers, one of them ``many``, whose fields read the context."""

    who = WhoSerializer(source="*", read_only=True)
    tags = TagWhoSerializer(many=True, read_only=True)

    class Meta:
        model = Product
        fields = ["id", "who", "tags"]


class MemoOnObjectSerializer(serializers.ModelSerializer):
    """Two fields share one per-user computation, kept on the instance."""

    liked = serializers.SerializerMethodField()
    label = serializers.SerializerMethodField()

    class Meta:
        model = Product
        fields = ["id", "liked", "label"]

    def viewer_state(self, obj):
        if not hasattr(obj, "_viewer_state"):
            query = parse_qs(self.context["request"].scope["query_string"].decode())
            obj._viewer_state = query["who"] == ["alice"]
        return obj._viewer_state

    def get_liked(self, obj):
        return self.viewer_state(obj)

    def get_label(self, obj):
        return "you like this" if self.viewer_state(obj) else ""


class MemoField(serializers.Field):
    """A field of the project's own, with state made in ``__init__`` (DRF
    deep-copies declared fields for every serializer, so this is per request)."""

    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, **kwargs)
        self.memo = {}

    def to_representation(self, obj):
        if obj.pk not in self.memo:
            self.memo[obj.pk] = self.context["request"].user.username or None
        return self.memo[obj.pk]


class MemoFieldSerializer(serializers.ModelSerializer):
    viewer = MemoField()

    class Meta:
        model = Product
        fields = ["id", "viewer"]


TENANT = contextvars.ContextVar("tenant", default=None)
LOCAL = Local()  # asgiref's, as Django's own per-request state


class TenantMiddleware:
    """Sets a context variable per connection, as tenant or logging middleware do."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        tenant = parse_qs(scope["query_string"].decode()).get("tenant", [None])[0]
        TENANT.set(tenant)
        LOCAL.tenant = tenant
        return await self.app(scope, receive, send)


TENANT_APP = TenantMiddleware(
    AuthMiddlewareStack(URLRouter([path("ws/", AsyncConsumer.as_asgi())]))
)


class Abort(BaseException):
    """Any BaseException out of a handler (SystemExit, ...)."""


def scope_shop(binding):
    return parse_qs(binding.request.scope["query_string"].decode())["shop"][0]


STREAMS = [
    "batch.tools",
    "batch.who",
    "batch.staffdesc",
    "batch.nested",
    "batch.guarded",
    "batch.ownobject",
    "batch.memo",
    "batch.memofield",
    "batch.notes",
    "batch.byshop",
    "batch.byshopkeyed",
    "batch.german",
    "batch.touching",
    "batch.listkey",
    "batch.tenanted",
]


@pytest.fixture(scope="module", autouse=True)
def batch_bindings():
    """Register the ``batch.*`` bindings for this module only."""

    class ToolsBinding(AsyncBinding):
        stream = "batch.tools"
        permission_classes = [AllowAny]

        @bind("hold", method="GET")
        def hold(self, request):
            if count_on_this_thread not in connection.execute_wrappers:
                connection.execute_wrappers.append(count_on_this_thread)
            HOLD.started.set()
            assert HOLD.release.wait(5), "the test never released the thread"
            return {"held": True}

        @bind("fail", method="GET")
        def fail(self, request):
            raise RuntimeError("only this request fails")

        @bind("abort", method="GET")
        def abort(self, request):
            raise Abort()

        @bind("cancelled", method="GET")
        def cancelled(self, request):
            raise asyncio.CancelledError()  # as out of async_to_sync(...)

        @bind("tenant", method="GET")
        def tenant(self, request):
            return TENANT.get()

        @bind("setlang", method="GET")
        def setlang(self, request):
            translation.activate(request.data["lang"])
            return translation.get_language()

        @bind("getlang", method="GET")
        def getlang(self, request):
            return translation.get_language()

        @bind("slow", method="GET")
        def slow(self, request):
            time.sleep(1)
            return "slow"

        @bind("stop", method="GET")
        def stop(self, request):
            return next(iter([]))  # a StopIteration escapes, which a future refuses

        @bind("write", method="GET")
        def write(self, request):
            Category.objects.create(name="written after the client left")
            return "written"

    def product_binding(name, **attrs):
        attrs.update(model=Product, stream=f"batch.{name}", __module__=__name__)
        type(f"{name.title()}Binding", (AsyncBinding,), attrs)

    product_binding("who", serializer_class=WhoSerializer)
    product_binding("staffdesc", serializer_class=StaffSeeDescriptionSerializer)
    product_binding("nested", serializer_class=NestedWhoSerializer)
    product_binding("guarded", fields=["id", "name"], permission_classes=[NotSecret])

    def get_object(self):
        OWN_OBJECT_READS.append(self.request.data["id"])
        return AsyncBinding.get_object(self)

    product_binding("ownobject", fields=["id", "name"], get_object=get_object)
    product_binding("memo", serializer_class=MemoOnObjectSerializer)
    product_binding("memofield", serializer_class=MemoFieldSerializer)

    class Notes(AsyncBinding):
        """Per-user rows, and says so."""

        model = Note
        stream = "batch.notes"
        fields = ["id", "text", "owner"]
        permission_classes = [IsAuthenticated]

        def get_queryset(self):
            return Note.objects.filter(owner=self.request.user.pk)

        def get_visibility_key(self):
            return self.request.user.pk

    product_binding(
        "byshop",
        fields=["id", "name"],
        get_queryset=lambda self: Product.objects.filter(
            category__name=scope_shop(self)
        ),
    )
    product_binding(
        "byshopkeyed",
        fields=["id", "name"],
        get_queryset=lambda self: Product.objects.filter(
            category__name=scope_shop(self)
        ),
        get_visibility_key=scope_shop,
    )

    def touching_retrieve(self, request):
        Product.objects.filter(pk=request.data["id"]).update(name="touched")
        return AsyncBinding.retrieve(self, request)

    product_binding("touching", fields=["id", "name"], retrieve=touching_retrieve)
    product_binding(
        "listkey",
        fields=["id", "name"],
        get_queryset=lambda self: Product.objects.all(),
        get_visibility_key=lambda self: ["not", "hashable"],
    )
    product_binding("tenanted", fields=["id", "name"])

    def run(self):
        with translation.override("de"):
            return AsyncBinding.run(self)

    product_binding(
        "german",
        fields=["id", "name"],
        run=run,
        lang=bind("lang", method="GET")(
            lambda self, request: translation.get_language()
        ),
    )
    try:
        yield
    finally:
        for stream in STREAMS:
            registry.unregister(stream)


OWN_OBJECT_READS = []


@pytest.fixture(autouse=True)
async def fresh_hold():
    global HOLD
    HOLD = Hold()
    OWN_OBJECT_READS.clear()
    yield
    HOLD.release.set()

    def remove_counter():
        while count_on_this_thread in connection.execute_wrappers:
            connection.execute_wrappers.remove(count_on_this_thread)

    await database_sync_to_async(remove_counter)()


async def wait_until(predicate, what, timeout=3):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


request_ids = itertools.count(1)


async def reply_to(client, request_id):
    """The reply to ``request_id``; other replies and pushes are kept."""
    replies = client.__dict__.setdefault("replies", {})
    while request_id not in replies:
        frame = await client.receive_json_from(3)
        if "request_id" in frame:
            replies[frame["request_id"]] = frame
        else:
            client.pushes.append(frame)
    return replies.pop(request_id)


async def in_one_trip(holder, sends):
    """Send ``sends`` (``(client, event, data)``) while the database thread is
    held, so that they all go in its next trip; their replies, in order."""
    HOLD.__init__()
    hold_id = next(request_ids)
    await holder.send_event("batch.tools.hold", request_id=hold_id)
    await wait_until(HOLD.started.is_set, "the hold to start")
    sent = []
    for client, event, data in sends:
        request_id = next(request_ids)
        await client.send_event(event, data, request_id=request_id)
        sent.append((client, request_id))
    batcher = Batcher.current()
    await wait_until(
        lambda: len(batcher.waiting) == len(sends), "every request to wait"
    )
    HOLD.counting = True
    HOLD.release.set()
    replies = [await reply_to(client, request_id) for client, request_id in sent]
    HOLD.counting = False
    assert (await reply_to(holder, hold_id))["data"] == {"held": True}
    return replies


def reads_of(table):
    """How many counted queries read ``table`` (not a join table named after it)."""
    pattern = re.compile(rf'FROM "{table}"(\s|$)')
    return sum(1 for sql in HOLD.sql if pattern.search(sql))


def error_of(frame):
    return frame["error"]["status"], frame["error"]["code"]


def make_products(*names):
    category = Category.objects.create(name="Pens")
    return [
        Product.objects.create(name=name, price=index + 1, category=category)
        for index, name in enumerate(names)
    ]


async def test_concurrent_retrieves_from_many_sockets_share_one_query(
    communicator, user
):
    products = await orm(make_products, "A", "B", "C", "D", "E")
    pks = [product.pk for product in products]
    wanted = [
        {"id": pks[0]},
        {"id": pks[1]},
        {"id": 999_999},  # missing
        {"id": str(pks[2])},  # a string key is the same row
        {"id": "abc"},  # a key of the wrong shape
        {"id": pks[3]},
        {"id": pks[0]},  # the same object twice
        {"id": pks[4]},
    ]
    async with (
        communicator() as holder,
        communicator() as first,
        communicator() as second,
        communicator(user) as third,
    ):
        clients = [first, second, third]
        replies = await in_one_trip(
            holder,
            [
                (clients[i % 3], "shop.Product.retrieve", data)
                for i, data in enumerate(wanted)
            ],
        )
        # one read for all, and one more for the missing row, read alone ("abc"
        # cannot be a key: no query)
        assert reads_of("shop_product") == 2, HOLD.sql
        alone = [
            await clients[i % 3].request("shop.Product.retrieve", data)
            for i, data in enumerate(wanted)
        ]
    for reply, lone in zip(replies, alone, strict=True):
        assert reply.keys() == lone.keys(), (reply, lone)
        assert reply.get("data") == lone.get("data")
        assert reply.get("error") == lone.get("error")
    assert replies[0]["data"]["name"] == "A"
    assert replies[0]["data"]["category"]["name"] == "Pens"
    assert replies[3]["data"]["name"] == "C"
    assert error_of(replies[2]) == (404, "not_found")
    assert error_of(replies[4]) == (404, "not_found")
    assert replies[6]["data"] == replies[0]["data"]


async def test_a_shared_read_still_watches_the_object(communicator):
    first_product, second_product = await orm(make_products, "A", "B")
    async with (
        communicator() as holder,
        communicator() as first,
        communicator() as second,
    ):
        await in_one_trip(
            holder,
            [
                (first, "shop.Product.retrieve", {"id": first_product.pk}),
                (second, "shop.Product.retrieve", {"id": second_product.pk}),
            ],
        )
        assert reads_of("shop_product") == 1
        for client, product, name in [
            (second, second_product, "renamed B"),
            (first, first_product, "renamed A"),
        ]:
            product.name = name
            await orm(product.save)
            push = await client.receive_json_from(3)
            assert push["event"] == "shop.Product.retrieve"
            assert push["data"]["id"] == product.pk
            assert push["data"]["name"] == name
        # each watches its own object only
        assert await first.receive_nothing(0.1)
        assert await second.receive_nothing(0.1)


@pytest.mark.parametrize(
    "stream, reads",
    [
        ("shop.Note", 7),  # get_queryset() by user, no key: each reads alone
        # the same with get_visibility_key(): one read per user, and one for
        # each row the user's read did not find (another's note), read alone
        ("batch.notes", 4),
    ],
)
async def test_users_who_see_different_rows_do_not_share_them(
    communicator, user, other_user, stream, reads
):
    def make_notes():
        return (
            Note.objects.create(owner=user, text="alice's", secret="a").pk,
            Note.objects.create(owner=other_user, text="bob's", secret="b").pk,
        )

    alice_note, bob_note = await orm(make_notes)
    event = f"{stream}.retrieve"
    async with (
        communicator() as holder,
        communicator(user) as alice,
        communicator(other_user) as bob,
        communicator() as anonymous,
    ):
        sends = [
            (bob, event, {"id": bob_note}),
            (alice, event, {"id": alice_note}),
            (alice, event, {"id": bob_note}),
            (bob, event, {"id": alice_note}),
            (anonymous, event, {"id": alice_note}),
            (alice, event, {"id": alice_note}),
            (bob, event, {"id": bob_note}),
            (alice, event, {"id": alice_note}),
        ]
        replies = await in_one_trip(holder, sends)
        assert reads_of("shop_note") == reads, HOLD.sql
        alone = [await client.request(event, data) for client, event, data in sends]
    assert replies[0]["data"] == {
        "id": bob_note,
        "text": "bob's",
        "owner": other_user.pk,
    }
    assert replies[1]["data"] == {"id": alice_note, "text": "alice's", "owner": user.pk}
    assert error_of(replies[2]) == (404, "not_found")
    assert error_of(replies[3]) == (404, "not_found")
    assert replies[4]["error"]["status"] in (401, 403)
    assert replies[5]["data"] == replies[7]["data"] == replies[1]["data"]
    assert replies[6]["data"] == replies[0]["data"]
    for reply, lone in zip(replies, alone, strict=True):
        assert reply.get("data") == lone.get("data")
        assert reply.get("error") == lone.get("error")


async def test_rows_that_depend_on_more_than_the_user_are_read_alone(communicator):
    def make():
        pens = Category.objects.create(name="Pens")
        return Product.objects.create(name="P", price=1, category=pens).pk

    pk = await orm(make)
    async with (
        communicator() as holder,
        communicator(path="/ws/?shop=Pens") as pens,
        communicator(path="/ws/?shop=Inks") as inks,
    ):
        for stream, reads in [("batch.byshop", 2), ("batch.byshopkeyed", 2)]:
            replies = await in_one_trip(
                holder,
                [
                    (pens, f"{stream}.retrieve", {"id": pk}),
                    (inks, f"{stream}.retrieve", {"id": pk}),
                ],
            )
            assert reads_of("shop_product") == reads, (stream, HOLD.sql)
            assert replies[0]["data"] == {"id": pk, "name": "P"}
            assert error_of(replies[1]) == (404, "not_found"), replies[1]


async def test_one_request_failing_fails_only_itself(communicator, user):
    products = await orm(make_products, "open", "secret plans", "open too")
    pks = [product.pk for product in products]
    async with communicator() as holder, communicator(user) as client:
        # Requests of one socket reach the database thread in the order sent
        # once the socket's process listens to the stream.
        await client.request("batch.guarded.retrieve", {"id": pks[0]})
        replies = await in_one_trip(
            holder,
            [
                (client, "batch.guarded.retrieve", {"id": pks[0]}),
                (client, "batch.guarded.retrieve", {"id": pks[1]}),  # object denied
                (client, "batch.tools.fail", None),  # the handler raises
                (client, "shop.Product.admin_only", None),  # has_permission denied
                (client, "batch.guarded.retrieve", {"id": pks[2]}),
                (client, "batch.guarded.retrieve", {"id": pks[0]}),
            ],
        )
        # the retrieves after the failing requests are a second run: two reads
        assert reads_of("shop_product") == 2, HOLD.sql
    assert replies[0]["data"] == {"id": pks[0], "name": "open"}
    assert replies[1]["error"] == {
        "status": 403,
        "code": "permission_denied",
        "detail": "Secret products are not shown.",
    }
    assert error_of(replies[2]) == (500, "server_error")
    assert "only this request" not in str(replies[2])
    assert error_of(replies[3])[0] == 403
    assert replies[4]["data"] == {"id": pks[2], "name": "open too"}
    assert replies[5]["data"] == replies[0]["data"]


async def test_a_retrieve_sent_after_a_write_reads_what_it_wrote(communicator, user):
    first_product, second_product = await orm(make_products, "A", "B")
    async with communicator() as holder, communicator(user) as client:
        # in the order sent (see above)
        await client.request("shop.Product.retrieve", {"id": second_product.pk})
        replies = await in_one_trip(
            holder,
            [
                (client, "shop.Product.retrieve", {"id": second_product.pk}),
                (
                    client,
                    "shop.Product.update",
                    {"id": first_product.pk, "name": "new"},
                ),
                (client, "shop.Product.retrieve", {"id": first_product.pk}),
                (client, "shop.Product.retrieve", {"id": second_product.pk}),
            ],
        )
    assert replies[1]["data"]["name"] == "new"
    assert replies[2]["data"]["name"] == "new"
    assert replies[3]["data"]["name"] == "B"


async def test_requests_with_more_than_a_key_or_their_own_get_object_read_alone(
    communicator,
):
    products = await orm(make_products, "A", "B", "C")
    pks = [product.pk for product in products]
    async with communicator() as holder, communicator() as client:
        replies = await in_one_trip(
            holder,
            [(client, "batch.ownobject.retrieve", {"id": pk}) for pk in pks]
            + [(client, "shop.Product.retrieve", {"id": pks[0], "extra": 1})]
            + [(client, "shop.Product.retrieve", {"id": pks[1], "extra": 1})],
        )
    assert [reply["data"]["name"] for reply in replies] == ["A", "B", "C", "A", "B"]
    assert OWN_OBJECT_READS == pks
    assert reads_of("shop_product") == 5, HOLD.sql


async def test_serializer_context_is_each_requests_own(communicator, user, other_user):
    (product,) = await orm(make_products, "A")
    await orm(product.tags.add, await orm(Tag.objects.create, name="ink"))
    async with (
        communicator() as holder,
        communicator(user) as alice,
        communicator(other_user) as bob,
        communicator() as anonymous,
    ):
        for stream in ("batch.who", "batch.nested"):
            sends = [
                (alice, f"{stream}.retrieve", {"id": product.pk}),
                (bob, f"{stream}.retrieve", {"id": product.pk}),
                (anonymous, f"{stream}.retrieve", {"id": product.pk}),
            ]
            replies = await in_one_trip(holder, sends)
            # the rows are everybody's: one read, each serialized for its user
            assert reads_of("shop_product") == 1, HOLD.sql
            if stream == "batch.who":
                seen = [reply["data"]["seen_by"] for reply in replies]
            else:
                seen = [reply["data"]["who"]["seen_by"] for reply in replies]
                tags = [reply["data"]["tags"] for reply in replies]
                assert tags == [[{"name": "ink", "seen_by": name}] for name in seen]
            assert seen == ["alice", "bob", None], replies
            alone = [await client.request(event, data) for client, event, data in sends]
            assert [reply["data"] for reply in alone] == [
                reply["data"] for reply in replies
            ]


async def test_fields_chosen_per_request_are_not_reused(communicator, user, staff_user):
    (product,) = await orm(make_products, "A")
    await orm(Product.objects.filter(pk=product.pk).update, description="internal")
    event = "batch.staffdesc.retrieve"
    async with communicator(staff_user) as staff, communicator(user) as plain:
        # the staff member's serializer is made first, both ways round
        for order in ([staff, plain], [plain, staff], [staff, plain]):
            replies = {}
            for client in order:
                replies[client] = await client.request(event, {"id": product.pk})
            assert replies[staff]["data"] == {
                "id": product.pk,
                "name": "A",
                "description": "internal",
            }
            assert replies[plain]["data"] == {"id": product.pk, "name": "A"}


async def test_a_consumer_on_the_channel_layer_answers_the_same(user):
    class LayerConsumer(AsyncConsumer):
        channel_layer_alias = "default"

    (product,) = await orm(make_products, "A")
    application = AuthMiddlewareStack(LayerConsumer.as_asgi())
    client = BindingCommunicator(application, "/ws/")
    client.scope["user"] = user
    async with client:
        assert client.connection is not None
        await client.send_event("ping")
        assert await client.receive_json_from(3) == {"event": "pong", "data": {}}
        reply = await client.request("shop.Product.retrieve", {"id": product.pk})
        assert reply["data"]["name"] == "A"
        missing = await client.request("shop.Product.retrieve", {"id": 999_999})
        assert error_of(missing) == (404, "not_found")


async def test_each_request_gets_its_own_instance(communicator):
    (product,) = await orm(make_products, "A")
    async with (
        communicator() as holder,
        communicator(path="/ws/?who=alice") as alice,
        communicator(path="/ws/?who=bob") as bob,
    ):
        lone = await bob.request("batch.memo.retrieve", {"id": product.pk})
        assert lone["data"] == {"id": product.pk, "liked": False, "label": ""}
        replies = await in_one_trip(
            holder,
            [
                (alice, "batch.memo.retrieve", {"id": product.pk}),
                (bob, "batch.memo.retrieve", {"id": product.pk}),
            ],
        )
        assert reads_of("shop_product") == 1
    assert replies[0]["data"]["liked"] is True
    assert replies[1]["data"] == lone["data"]


async def test_a_field_class_of_the_project_is_built_per_request(
    communicator, user, other_user
):
    (product,) = await orm(make_products, "A")
    async with communicator(user) as alice, communicator(other_user) as bob:
        first = await alice.request("batch.memofield.retrieve", {"id": product.pk})
        second = await bob.request("batch.memofield.retrieve", {"id": product.pk})
    assert first["data"]["viewer"] == "alice"
    assert second["data"]["viewer"] == "bob"


async def test_each_request_runs_in_its_own_context():
    async with (
        BindingCommunicator(TENANT_APP, "/ws/?tenant=holder") as holder,
        BindingCommunicator(TENANT_APP, "/ws/?tenant=acme") as acme,
        BindingCommunicator(TENANT_APP, "/ws/?tenant=globex") as globex,
    ):
        assert (await acme.request("batch.tools.tenant"))["data"] == "acme"
        replies = await in_one_trip(
            holder,
            [(acme, "batch.tools.tenant", None), (globex, "batch.tools.tenant", None)],
        )
    assert [reply["data"] for reply in replies] == ["acme", "globex"]


async def test_what_a_handler_changes_in_its_context_stays_there(communicator):
    async with communicator() as holder, communicator() as a, communicator() as b:
        replies = await in_one_trip(
            holder,
            [
                (a, "batch.tools.setlang", {"lang": "fr"}),
                (b, "batch.tools.getlang", None),
            ],
        )
        assert [reply["data"] for reply in replies] == ["fr", "en-us"]
        # nor does it reach later trips
        replies = await in_one_trip(holder, [(b, "batch.tools.getlang", None)])
        assert replies[0]["data"] == "en-us"


async def test_an_overridden_run_is_used(communicator):
    (product,) = await orm(make_products, "A")
    async with communicator() as holder, communicator() as client:
        replies = await in_one_trip(
            holder,
            [
                (client, "batch.german.lang", None),
                (client, "batch.german.retrieve", {"id": product.pk}),
                (client, "batch.german.retrieve", {"id": product.pk}),
            ],
        )
        # the retrieves are read alone, each inside its own run()
        assert reads_of("shop_product") == 2
    assert replies[0]["data"] == "de"
    assert replies[1]["data"] == replies[2]["data"] == {"id": product.pk, "name": "A"}


@pytest.mark.parametrize("event", ["batch.tools.abort", "batch.tools.cancelled"])
async def test_a_base_exception_fails_only_its_request(communicator, user, event):
    (product,) = await orm(make_products, "A")
    async with (
        communicator() as holder,
        communicator() as bad,
        communicator(user) as other,
    ):
        replies = await in_one_trip(
            holder,
            [
                (bad, event, None),
                (other, "shop.Product.retrieve", {"id": product.pk}),
            ],
        )
        assert replies[1]["data"]["name"] == "A"
        assert error_of(replies[0]) == (500, "server_error")
        # the socket that failed still answers
        assert (await bad.request("shop.Product.retrieve", {"id": product.pk}))["data"][
            "name"
        ] == "A"


async def test_a_reply_does_not_wait_for_a_slow_request_after_it(communicator, user):
    (product,) = await orm(make_products, "A")
    async with (
        communicator() as holder,
        communicator(user) as fast,
        communicator() as slow,
    ):
        await holder.send_event("batch.tools.hold", request_id="hold")
        await wait_until(HOLD.started.is_set, "the hold to start")
        await fast.send_event("shop.Product.retrieve", {"id": product.pk}, request_id=1)
        await slow.send_event("batch.tools.slow", request_id=2)
        batcher = Batcher.current()
        await wait_until(lambda: len(batcher.waiting) == 2, "both to wait")
        HOLD.release.set()
        loop = asyncio.get_running_loop()
        started = loop.time()
        reply = await reply_to(fast, 1)
        waited = loop.time() - started
        assert reply["data"]["name"] == "A"
        assert waited < 0.5, f"the retrieve waited {waited:.2f} s"
        assert (await reply_to(slow, 2))["data"] == "slow"


async def test_a_request_whose_client_left_does_not_run(communicator, user):
    async with communicator() as holder:
        client = communicator(user)
        await client.connect()
        await holder.send_event("batch.tools.hold", request_id="hold")
        await wait_until(HOLD.started.is_set, "the hold to start")
        await client.send_event("batch.tools.write", request_id=1)
        batcher = Batcher.current()
        await wait_until(lambda: len(batcher.waiting) == 1, "the write to wait")
        await client.disconnect()
        HOLD.release.set()
        assert (await reply_to(holder, "hold"))["data"] == {"held": True}
        # a request after it, on another socket, runs
        (product,) = await orm(make_products, "A")
        assert (await holder.request("shop.Product.retrieve", {"id": product.pk}))[
            "data"
        ]["name"] == "A"
    written = await orm(
        Category.objects.filter(name="written after the client left").count
    )
    assert written == 0


async def test_an_overridden_retrieve_reads_alone(communicator):
    first, second = await orm(make_products, "A", "B")
    async with communicator() as holder, communicator() as client:
        replies = await in_one_trip(
            holder,
            [
                (client, "batch.touching.retrieve", {"id": first.pk}),
                (client, "batch.touching.retrieve", {"id": second.pk}),
            ],
        )
        assert reads_of("shop_product") == 2
    # each reads what its own handler wrote just before
    assert [reply["data"]["name"] for reply in replies] == ["touched", "touched"]


async def test_a_stop_iteration_fails_only_its_request(communicator, user):
    (product,) = await orm(make_products, "A")
    async with communicator() as holder, communicator(user) as client:
        replies = await in_one_trip(
            holder,
            [
                (client, "batch.tools.stop", None),
                (client, "shop.Product.retrieve", {"id": product.pk}),
                (client, "shop.Product.retrieve", {"id": product.pk}),
            ],
        )
    assert error_of(replies[0]) == (500, "server_error")
    assert replies[1]["data"]["name"] == replies[2]["data"]["name"] == "A"


async def test_a_broken_visibility_key_fails_only_its_requests(communicator, user):
    (product,) = await orm(make_products, "A")
    async with (
        communicator() as holder,
        communicator() as broken,
        communicator(user) as other,
    ):
        replies = await in_one_trip(
            holder,
            [
                (broken, "batch.listkey.retrieve", {"id": product.pk}),
                (broken, "batch.listkey.retrieve", {"id": product.pk}),
                (other, "shop.Category.create", {"name": "made"}),
                (other, "shop.Product.retrieve", {"id": product.pk}),
                (other, "shop.Product.retrieve", {"id": product.pk}),
            ],
        )
    made = await orm(Category.objects.filter(name="made").count)
    # the broken key only stops the sharing: each of its requests reads alone
    assert [reply["data"]["name"] for reply in replies[:2]] == ["A", "A"]
    assert replies[2]["data"]["name"] == "made" and made == 1
    assert replies[3]["data"]["name"] == replies[4]["data"]["name"] == "A"


@pytest.mark.parametrize(
    "tenant", [TENANT.get, lambda: getattr(LOCAL, "tenant", None)], ids=["var", "local"]
)
async def test_requests_whose_context_differs_do_not_share_a_read(monkeypatch, tenant):
    def make():
        acme = Category.objects.create(name="acme")
        return Product.objects.create(name="acme's", price=1, category=acme).pk

    pk = await orm(make)
    manager = Product._default_manager
    everything = manager.get_queryset

    def tenant_rows():  # a default manager that reads a context variable
        return everything().filter(category__name=tenant())

    monkeypatch.setattr(manager, "get_queryset", tenant_rows)
    async with (
        BindingCommunicator(TENANT_APP, "/ws/?tenant=holder") as holder,
        BindingCommunicator(TENANT_APP, "/ws/?tenant=acme") as acme,
        BindingCommunicator(TENANT_APP, "/ws/?tenant=globex") as globex,
    ):
        alone = await globex.request("batch.tenanted.retrieve", {"id": pk})
        replies = await in_one_trip(
            holder,
            [
                (acme, "batch.tenanted.retrieve", {"id": pk}),
                (globex, "batch.tenanted.retrieve", {"id": pk}),
                (acme, "batch.tenanted.retrieve", {"id": pk}),
            ],
        )
        assert reads_of("shop_product") == 2  # one per tenant
    assert error_of(alone) == (404, "not_found")
    assert replies[0]["data"] == replies[2]["data"] == {"id": pk, "name": "acme's"}
    assert error_of(replies[1]) == (404, "not_found")


# -- shared pages ---------------------------------------------------------------------


async def test_identical_lists_in_one_trip_read_their_page_once(communicator, user):
    await orm(make_products, "A", "B", "C")
    page = {"filters": {"price__lt": 2.5}, "limit": 10}
    other = {"filters": {"price__gt": 1.5}, "limit": 10}
    async with (
        communicator() as holder,
        communicator() as first,
        communicator(user) as second,
    ):
        replies = await in_one_trip(
            holder,
            [
                (first, "shop.Product.list", page),
                (second, "shop.Product.list", page),
                (first, "shop.Product.list", other),
                (second, "shop.Product.list", page),
            ],
        )
        # one count and one page for the identical lists, the same for the other
        assert reads_of("shop_product") == 4, (HOLD.sql, replies)
        alone = [
            await client.request("shop.Product.list", data)
            for client, data in [(first, page), (second, page), (first, other)]
        ]
        # each still watches what it listed
        products = await orm(lambda: list(Product.objects.order_by("name")))
        products[1].name = "B2"
        await orm(products[1].save)
        for client in (first, second):
            push = await client.receive_json_from(3)
            assert (push["event"], push["data"]["name"]) == (
                "shop.Product.retrieve",
                "B2",
            )
    assert [row["name"] for row in replies[0]["data"]["rows"]] == ["A", "B"]
    for reply, lone in zip(replies, alone + [alone[1]], strict=True):
        assert reply["data"] == lone["data"]


async def test_a_list_sent_after_a_write_reads_again(communicator, user):
    (product,) = await orm(make_products, "A")
    page = {"filters": {"price__lt": 5}}
    async with communicator() as holder, communicator(user) as client:
        replies = await in_one_trip(
            holder,
            [
                (client, "shop.Product.list", page),
                (client, "shop.Product.update", {"id": product.pk, "name": "new"}),
                (client, "shop.Product.list", page),
            ],
        )
    assert [row["name"] for row in replies[0]["data"]["rows"]] == ["A"]
    assert [row["name"] for row in replies[2]["data"]["rows"]] == ["new"]


async def test_users_who_see_different_rows_do_not_share_pages(
    communicator, user, other_user
):
    def make_notes():
        Note.objects.create(owner=user, text="mine")
        Note.objects.create(owner=other_user, text="theirs")

    await orm(make_notes)
    async with (
        communicator() as holder,
        communicator(user) as first,
        communicator(other_user) as second,
    ):
        replies = await in_one_trip(
            holder,
            [(first, "batch.notes.list", {}), (second, "batch.notes.list", {})],
        )
    assert [row["text"] for row in replies[0]["data"]["rows"]] == ["mine"]
    assert [row["text"] for row in replies[1]["data"]["rows"]] == ["theirs"]


async def test_a_page_keeps_fields_chosen_per_request_and_per_viewer(
    communicator, user, other_user, staff_user
):
    (product,) = await orm(make_products, "A")
    await orm(Product.objects.filter(pk=product.pk).update, description="internal")
    async with (
        communicator(staff_user) as staff,
        communicator(user) as alice,
        communicator(other_user) as bob,
    ):
        for _ in range(2):  # the second time from fields built once
            rows = {}
            for client in (staff, alice):
                reply = await client.request("batch.staffdesc.list", {})
                rows[client] = reply["data"]["rows"]
            assert rows[staff] == [
                {"id": product.pk, "name": "A", "description": "internal"}
            ]
            assert rows[alice] == [{"id": product.pk, "name": "A"}]
            for client, name in ((alice, "alice"), (bob, "bob")):
                reply = await client.request("batch.memofield.list", {})
                assert reply["data"]["rows"][0]["viewer"] == name


class CountedListSerializer(serializers.ListSerializer):
    def to_representation(self, data):
        return [{"counted": len(data)}, *super().to_representation(data)]


async def test_a_page_uses_the_serializers_list_class(communicator):
    class CountedSerializer(serializers.ModelSerializer):
        class Meta:
            model = Product
            fields = ["id", "name"]
            list_serializer_class = CountedListSerializer

    class CountedBinding(AsyncBinding):
        stream = "batch.counted"
        model = Product
        serializer_class = CountedSerializer
        permission_classes = [AllowAny]

    try:
        await orm(make_products, "A", "B")
        async with communicator() as client:
            for _ in range(2):
                reply = await client.request("batch.counted.list", {})
                assert reply["data"]["rows"][0] == {"counted": 2}
                assert [row["name"] for row in reply["data"]["rows"][1:]] == ["A", "B"]
    finally:
        registry.unregister("batch.counted")
