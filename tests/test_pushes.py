"""The cost of one change does not grow with the number of watchers.

``compute_pushes`` is what a server process runs, in its database thread, for each
batch of changed rows. Here it runs on this thread so its queries can be counted.
Watchers are plain objects carrying a user, as the hub sees a connection.
"""

import json

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.functional import cached_property
from rest_framework import serializers

from channels_binding.bindings import AsyncBinding
from channels_binding.live.pushes import compute_pushes
from channels_binding.live.subscriptions import Subscription, SubscriptionIndex
from channels_binding.registry import registry
from channels_binding.serializers import reads_only_the_object
from tests.shop.models import Category, Note, Product, Tag

pytestmark = pytest.mark.django_db


class Watcher:
    def __init__(self, user):
        self.user = user
        self.auth = None


def users(count):
    model = get_user_model()
    return [model.objects.create_user(f"user{i}") for i in range(count)]


#: The read transaction around a push's reads (channels_binding.live.snapshot):
#: not counted among its queries.
TRANSACTION = ("SAVEPOINT", "RELEASE SAVEPOINT", "BEGIN", "COMMIT")


def queries_for(stream, pks, subscriptions):
    """The number of queries that read rows, and the frames."""
    index = SubscriptionIndex()
    for subscription in subscriptions:
        index.add(subscription)
    with CaptureQueriesContext(connection) as captured:
        frames = compute_pushes(index, stream, pks)
    reads = [q for q in captured if not q["sql"].startswith(TRANSACTION)]
    return len(reads), frames


def product_watchers(watchers, pk):
    subs = []
    for watcher in watchers:
        subs.append(Subscription(watcher, "shop.Product", None, pk=pk))
        subs.append(
            Subscription(watcher, "shop.Product", "f", filters={"in_stock": True})
        )
    return subs


def test_product_change_costs_the_same_for_1_and_50_watchers():
    category = Category.objects.create(name="c")
    product = Product.objects.create(name="p", price=1, category=category)
    product.tags.add(Tag.objects.create(name="t"))
    people = users(50)
    one, frames_one = queries_for(
        "shop.Product", [product.pk], product_watchers([Watcher(people[0])], product.pk)
    )
    fifty, frames_fifty = queries_for(
        "shop.Product",
        [product.pk],
        product_watchers([Watcher(user) for user in people], product.pk),
    )
    assert one == fifty
    assert one <= 3  # probes (one union), the row with its category, its tags
    assert len(frames_one) == 2 and len(frames_fifty) == 100
    data = [json.loads(text)["data"] for _, text in frames_fifty]
    assert all(item == data[0] for item in data)
    assert data[0]["tags"] == ["t"] and data[0]["category"]["name"] == "c"


def per_user_pushes(stream):
    """50 users with a note each; ``(queries, frames)`` of their notes' change
    with one of them watching ``stream``, then all 50."""
    people = users(50)
    notes = [Note.objects.create(owner=user, text=user.username) for user in people]
    pks = [note.pk for note in notes]

    def watchers(count):
        return [
            Subscription(Watcher(user), stream, None, filters={})
            for user in people[:count]
        ]

    return queries_for(stream, pks, watchers(1)), queries_for(stream, pks, watchers(50))


def assert_each_got_their_own(frames_one, frames_fifty):
    # each user is pushed exactly their own note, nobody else's
    assert len(frames_fifty) == 50
    for watcher, text in frames_fifty:
        assert json.loads(text)["data"]["owner"] == watcher.user.pk
    assert len(frames_one) == 1


def test_per_user_visibility_costs_the_same_for_1_and_50_users():
    (one, frames_one), (fifty, frames_fifty) = per_user_pushes("shop.Note")
    # one read of the rows: owner=user is decided from them (live/matching.py)
    assert one == fifty == 1
    assert_each_got_their_own(frames_one, frames_fifty)


def test_per_user_visibility_through_a_join_is_probed_in_one_union():
    class ByName(AsyncBinding):
        model = Note
        stream = "shop.byname"
        fields = ["id", "text", "owner"]

        def get_queryset(self):
            return Note.objects.filter(owner__username=self.request.user.username)

    try:
        (one, frames_one), (fifty, frames_fifty) = per_user_pushes("shop.byname")
    finally:
        registry.unregister("shop.byname")
    assert one == fifty == 2  # one union of 50 probes, one read of the rows
    assert_each_got_their_own(frames_one, frames_fifty)


def test_a_row_a_watcher_never_saw_is_never_mentioned():
    owner, stranger = users(2)
    note = Note.objects.create(owner=owner, text="secret")
    sub = Subscription(Watcher(stranger), "shop.Note", None, filters={})
    queries, frames = queries_for("shop.Note", [note.pk], [sub])
    assert frames == []
    # once seen, losing sight of it sends the delete
    sub.saw([note.pk])
    queries, frames = queries_for("shop.Note", [note.pk], [sub])
    assert [json.loads(text) for _, text in frames] == [
        {"event": "shop.Note.delete", "data": {"id": note.pk}}
    ]


def test_a_broken_subscription_does_not_stop_the_others():
    product = Product.objects.create(name="p", price=1)
    (person,) = users(1)
    broken = Subscription(
        Watcher(person), "shop.Product", "broken", filters={"no_such_field": 1}
    )
    fine = Subscription(Watcher(person), "shop.Product", "fine", filters={})
    queries, frames = queries_for("shop.Product", [product.pk], [broken, fine])
    events = [json.loads(text)["event"] for _, text in frames]
    assert events == ["shop.Product.retrieve#fine"]


def test_a_visibility_key_that_fails_stops_only_its_watcher():
    class Fragile(AsyncBinding):
        model = Note
        stream = "shop.fragile"
        fields = ["id", "text"]

        def get_queryset(self):
            return Note.objects.filter(owner=self.request.user.pk)

        def get_visibility_key(self):
            if self.request.user.username == "user1":
                raise RuntimeError("broken key")
            return super().get_visibility_key()

    try:
        fine, broken = users(2)
        fine_note = Note.objects.create(owner=fine, text="fine")
        broken_note = Note.objects.create(owner=broken, text="broken")
        subs = [
            Subscription(Watcher(broken), "shop.fragile", None, filters={}),
            Subscription(Watcher(fine), "shop.fragile", None, filters={}),
        ]
        subs[0].saw([broken_note.pk])  # it had seen its note: it loses sight of it
        queries, frames = queries_for(
            "shop.fragile", [fine_note.pk, broken_note.pk], subs
        )
        received = {watcher.user.username: json.loads(text) for watcher, text in frames}
        assert received == {
            "user0": {
                "event": "shop.fragile.retrieve",
                "data": {"id": fine_note.pk, "text": "fine"},
            },
            "user1": {"event": "shop.fragile.delete", "data": {"id": broken_note.pk}},
        }
    finally:
        registry.unregister("shop.fragile")


def test_watchers_of_one_key_share_one_frame_text():
    product = Product.objects.create(name="p", price=1)
    people = users(3)
    subs = [
        Subscription(Watcher(person), "shop.Product", hash_, pk=product.pk)
        for person in people
        for hash_ in (None, "box")
    ]
    queries, frames = queries_for("shop.Product", [product.pk], subs)
    texts = [text for _, text in frames]
    assert len(texts) == 6
    assert len({id(text) for text in texts}) == 2  # one per event, not per watcher
    events = sorted(json.loads(text)["event"] for text in texts)
    assert events == ["shop.Product.retrieve"] * 3 + ["shop.Product.retrieve#box"] * 3


def test_per_user_keys_share_one_text_when_the_serializer_reads_only_the_row():
    """get_queryset() per user decides which rows, not how they look: the
    serializer reads only the object, so the row is serialized once for all."""
    type(
        "SharedWays",
        (AsyncBinding,),
        {
            "model": Product,
            "stream": "shop.ways",
            "__module__": __name__,
            "fields": ["id", "name"],
            "get_queryset": every_product_per_user,
        },
    )
    try:
        product = Product.objects.create(name="p", price=1)
        subs = [
            Subscription(Watcher(person), "shop.ways", None, pk=product.pk)
            for person in users(3)
        ]
        queries, frames = queries_for("shop.ways", [product.pk], subs)
    finally:
        registry.unregister("shop.ways")
    texts = [text for _, text in frames]
    assert len(texts) == 3 and len({id(text) for text in texts}) == 1


class PublicProduct(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ["id", "name"]


class StaffProduct(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ["id", "name", "description"]


class LikedProduct(serializers.ModelSerializer):
    liked = serializers.SerializerMethodField()

    class Meta:
        model = Product
        fields = ["id", "liked"]

    def get_liked(self, obj):
        return self.context["request"].user.username == "user0"


class NestsLiked(serializers.ModelSerializer):
    inner = LikedProduct(source="*", read_only=True)

    class Meta:
        model = Product
        fields = ["id", "inner"]


class OwnField(serializers.Field):
    def to_representation(self, value):
        return 1


class HasOwnField(serializers.ModelSerializer):
    own = OwnField(source="*")

    class Meta:
        model = Product
        fields = ["id", "own"]


class OwnRepresentation(PublicProduct):
    def to_representation(self, instance):
        return super().to_representation(instance)


class Hyperlinked(serializers.HyperlinkedModelSerializer):
    class Meta:
        model = Product
        fields = ["id", "name"]


class WritesAndHelpers(serializers.ModelSerializer):
    """Validation, writes and helpers of its own: nothing that reading calls."""

    serializer_related_field = serializers.PrimaryKeyRelatedField

    class Meta:
        model = Product
        fields = ["id", "name", "category"]

    def validate_name(self, value):
        return self.clean(value)

    def clean(self, value):
        return value.strip()

    def validate(self, attrs):
        return attrs

    def to_internal_value(self, data):
        return super().to_internal_value(data)

    def create(self, validated_data):
        return super().create(validated_data)


class NestsMany(serializers.ModelSerializer):
    tags = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")
    same = PublicProduct(source="*", read_only=True)
    also = PublicProduct(source="category.product_set", many=True, read_only=True)

    class Meta:
        model = Product
        fields = ["id", "tags", "same", "also"]


class FieldsPerUser(serializers.ModelSerializer):
    """Trims its fields with a cached_property, as DRF's own ``fields`` is."""

    class Meta:
        model = Product
        fields = ["id", "name", "description"]

    @cached_property
    def fields(self):
        fields = super().fields
        request = self.context.get("request")
        if request is None or not request.user.is_staff:
            fields.pop("description", None)
        return fields


class ReadablePerUser(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ["id", "name", "description"]

    @cached_property
    def _readable_fields(self):
        staff = self.context["request"].user.is_staff
        return [
            field
            for field in self.fields.values()
            if not field.write_only and (staff or field.field_name != "description")
        ]


class HidesByGetattribute:
    """A mixin placed after ModelSerializer, trimming per user."""

    def __getattribute__(self, name):
        value = object.__getattribute__(self, name)
        if name == "_readable_fields" and not self.context["request"].user.is_staff:
            return [field for field in value if field.field_name != "description"]
        return value


class MixinAfter(serializers.ModelSerializer, HidesByGetattribute):
    class Meta:
        model = Product
        fields = ["id", "name", "description"]


class DataByGetattr(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ["id", "name", "description"]

    def __getattr__(self, name):  # DRF's data asks for _data
        if name == "_data":
            return {"who": self.context["request"].user.username}
        raise AttributeError(name)


class UserDefault(serializers.ModelSerializer):
    """A missing source falls back to the default, which reads the user."""

    hint = serializers.CharField(
        source="category.name", read_only=True, default=serializers.CurrentUserDefault()
    )

    class Meta:
        model = Product
        fields = ["id", "hint"]


class DeepList(serializers.ModelSerializer):
    grid = serializers.ListField(
        child=serializers.ListField(child=OwnField()), source="name", read_only=True
    )

    class Meta:
        model = Product
        fields = ["id", "grid"]


class ListOfMany(serializers.ModelSerializer):
    groups = serializers.ListField(
        child=LikedProduct(many=True), source="name", read_only=True
    )

    class Meta:
        model = Product
        fields = ["id", "groups"]


class PerUserMetaclass(type(serializers.ModelSerializer)):
    def __call__(cls, *args, **kwargs):
        serializer = super().__call__(*args, **kwargs)
        request = serializer.context.get("request")
        if request is not None and not request.user.is_staff:
            serializer.fields.pop("description", None)
        return serializer


class MetaclassPerUser(serializers.ModelSerializer, metaclass=PerUserMetaclass):
    class Meta:
        model = Product
        fields = ["id", "name", "description"]


@pytest.mark.parametrize(
    "serializer, same",
    [
        (PublicProduct, True),
        (registry.get("shop.Product").serializer_class, True),  # nested, slugs
        (Hyperlinked, True),
        (WritesAndHelpers, True),
        (NestsMany, True),
        (LikedProduct, False),
        (NestsLiked, False),
        (HasOwnField, False),
        (OwnRepresentation, False),
        (FieldsPerUser, False),
        (ReadablePerUser, False),
        (MixinAfter, False),
        (DataByGetattr, False),
        (UserDefault, False),
        (DeepList, False),
        (ListOfMany, False),
        (MetaclassPerUser, False),
    ],
)
def test_which_serializers_read_only_the_object(serializer, same):
    assert reads_only_the_object(serializer) is same


@pytest.mark.parametrize(
    "attrs",
    [
        {
            "get_serializer_class": lambda self: (
                StaffProduct if self.request.user.is_staff else PublicProduct
            )
        },
        {"serializer_class": LikedProduct},
    ],
    ids=["serializer-per-user", "method-field"],
)
@pytest.mark.parametrize("queryset", ["default", "per-user"])
def test_a_push_is_serialized_for_each_user_when_the_output_may_differ(attrs, queryset):
    product, data = pushed_to_plain_and_staff(attrs, False, queryset)
    if "serializer_class" in attrs:
        assert data == {
            "user0": {"id": product.pk, "liked": True},
            "user1": {"id": product.pk, "liked": False},
        }
    else:
        assert data == {
            "user0": {"id": product.pk, "name": "p"},
            "user1": {"id": product.pk, "name": "p", "description": "internal"},
        }


def every_product_per_user(self):
    """A get_queryset() of its own: one visibility key per user."""
    return Product.objects.filter(pk__gte=0 if self.request.user else -1)


def pushed_to_plain_and_staff(attrs, staff_first, queryset="default"):
    """A binding made of ``attrs`` on ``shop.ways``; the product and what a
    plain user (user0) and a staff member (user1) watching it are pushed.
    ``queryset="per-user"`` adds a get_queryset() of its own."""
    if queryset == "per-user":
        attrs = {"get_queryset": every_product_per_user, **attrs}
    type(
        "PerUserWays",
        (AsyncBinding,),
        {"model": Product, "stream": "shop.ways", "__module__": __name__, **attrs},
    )
    try:
        product = Product.objects.create(name="p", price=1, description="internal")
        plain, staff = users(2)
        staff.is_staff = True
        people = [staff, plain] if staff_first else [plain, staff]
        subs = [
            Subscription(Watcher(person), "shop.ways", None, pk=product.pk)
            for person in people
        ]
        queries, frames = queries_for("shop.ways", [product.pk], subs)
        return product, {w.user.username: json.loads(t)["data"] for w, t in frames}
    finally:
        registry.unregister("shop.ways")


class StaffOnlyData(serializers.ModelSerializer):
    """Hides a field from non-staff in ``data``: code of its own, so per user."""

    class Meta:
        model = Product
        fields = ["id", "name", "description"]

    @property
    def data(self):
        data = super().data
        if not self.context["request"].user.is_staff:
            data = {k: v for k, v in data.items() if k != "description"}
        return data


class StaffOnlyReadable(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ["id", "name", "description"]

    @property
    def _readable_fields(self):
        staff = self.context["request"].user.is_staff
        for field in super()._readable_fields:
            if staff or field.field_name != "description":
                yield field


def staff_serializer(self):
    return StaffProduct if self.request.user.is_staff else PublicProduct


def init_per_user(self, request):
    AsyncBinding.__init__(self, request)
    self.serializer_class = staff_serializer(self)


def fields_per_user(self):
    if self.request.user.is_staff:
        return ["id", "name", "description"]
    return ["id", "name"]


@pytest.mark.parametrize(
    "attrs",
    [
        {"serializer_class": property(staff_serializer)},
        {"__init__": init_per_user},
        {"fields": property(fields_per_user)},
        {"serializer_class": StaffOnlyData},
        {"serializer_class": StaffOnlyReadable},
        {"serializer_class": FieldsPerUser},
        {"serializer_class": ReadablePerUser},
        {"serializer_class": MixinAfter},
        {"serializer_class": MetaclassPerUser},
    ],
    ids=[
        "class-property",
        "init",
        "fields-property",
        "data",
        "readable-fields",
        "cached-fields",
        "cached-readable-fields",
        "mixin-after",
        "metaclass",
    ],
)
@pytest.mark.parametrize("staff_first", [True, False])
@pytest.mark.parametrize("queryset", ["default", "per-user"])
def test_serializers_chosen_or_trimmed_per_user_are_never_shared(
    attrs, staff_first, queryset
):
    product, data = pushed_to_plain_and_staff(attrs, staff_first, queryset)
    assert data == {
        "user0": {"id": product.pk, "name": "p"},
        "user1": {"id": product.pk, "name": "p", "description": "internal"},
    }
