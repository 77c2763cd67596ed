"""DRF serializers of the demo: validation errors reach the page field by field."""

from rest_framework import serializers

from .models import Note, Product


class ProductSerializer(serializers.ModelSerializer):
    category_name = serializers.CharField(source="category.name", read_only=True)

    class Meta:
        model = Product
        fields = [
            "id",
            "name",
            "description",
            "price",
            "category",
            "category_name",
            "in_stock",
            "created_at",
        ]

    def validate_name(self, value: str) -> str:
        value = value.strip()
        if len(value) < 3:
            raise serializers.ValidationError("Use at least 3 characters.")
        return value

    def validate_price(self, value):
        if value < 0:
            raise serializers.ValidationError("Price cannot be negative.")
        return value


class NoteSerializer(serializers.ModelSerializer):
    # Never read from the client: the note belongs to whoever writes it.
    owner = serializers.HiddenField(default=serializers.CurrentUserDefault())
    owner_name = serializers.CharField(source="owner.username", read_only=True)

    class Meta:
        model = Note
        fields = ["id", "text", "done", "owner", "owner_name", "created_at"]
