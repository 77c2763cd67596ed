import asyncio

from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAdminUser, IsAuthenticated

from channels_binding.bindings import AsyncBinding, bind

from .models import Category, Note, Product, Tag


class CategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["id", "name"]


class ProductSerializer(serializers.ModelSerializer):
    category = CategorySerializer(read_only=True)
    category_id = serializers.PrimaryKeyRelatedField(
        source="category",
        queryset=Category.objects.all(),
        write_only=True,
        required=False,
        allow_null=True,
    )
    tags = serializers.SlugRelatedField(
        many=True, slug_field="name", queryset=Tag.objects.all(), required=False
    )

    class Meta:
        model = Product
        fields = [
            "id",
            "name",
            "description",
            "price",
            "in_stock",
            "category",
            "category_id",
            "tags",
            "created",
        ]

    def validate_price(self, value):
        if value < 0:
            raise serializers.ValidationError("Price cannot be negative.")
        return value


class CategoryBinding(AsyncBinding):
    model = Category
    fields = ["id", "name"]
    search_fields = ["name"]
    ordering_fields = ["name"]


class ProductBinding(AsyncBinding):
    model = Product
    serializer_class = ProductSerializer
    search_fields = ["name", "description"]
    filter_fields = {
        "in_stock": ["exact"],
        "category": ["exact", "in"],
        "price": ["exact", "lt", "gt"],
    }
    ordering_fields = ["name", "price", "created"]

    @bind("stats", method="GET")
    def stats(self, request):
        queryset = self.get_queryset()
        return {"count": queryset.count(), "user": request.user.username or None}

    @bind("echo", method="GET")
    async def echo(self, request):
        await asyncio.sleep(0)
        return {"data": request.data, "hash": request.hash, "event": request.event}

    @bind("restock")
    def restock(self, request):
        return {"updated": self.get_queryset().update(in_stock=True)}

    @bind("admin_only", method="GET", permission_classes=[IsAdminUser])
    def admin_only(self, request):
        return {"ok": True}

    @bind("boom", method="GET")
    def boom(self, request):
        raise RuntimeError("/secret/path.py SELECT * FROM shop_product")


class TagBinding(AsyncBinding):
    """Read-only: the other actions answer 405."""

    model = Tag
    fields = ["id", "name"]
    actions = ("retrieve", "list")


class NoteBinding(AsyncBinding):
    model = Note
    fields = ["id", "text", "owner"]
    read_only_fields = ["owner"]
    permission_classes = [IsAuthenticated]

    def get_queryset(self):
        return Note.objects.filter(owner=self.request.user.pk)

    def perform_create(self, serializer):
        serializer.save(owner=self.request.user)


class ToolsBinding(AsyncBinding):
    """A stream with custom events only."""

    stream = "tools"
    permission_classes = [AllowAny]

    @bind("add", method="GET")
    def add(self, request):
        a, b = request.data.get("a"), request.data.get("b")
        if not isinstance(a, int) or not isinstance(b, int):
            raise serializers.ValidationError({"a": ["Send two integers a and b."]})
        return {"sum": a + b}

    @bind("whoami", method="GET")
    async def whoami(self, request):
        return {"user_id": request.user.pk, "transport": request.transport}

    @bind("progress", method="GET")
    def progress(self, request):
        sent = request.notify_self({"step": 1})
        return {"done": True, "notified": sent}

    @bind("aprogress", method="GET")
    async def aprogress(self, request):
        sent = await request.anotify_self({"event": "job.step", "data": {"step": 2}})
        return {"done": True, "notified": sent}
