from rest_framework import serializers

from .models import Product


class ProductSerializer(serializers.ModelSerializer):
    """The one serializer every stack under test uses."""

    class Meta:
        model = Product
        fields = [
            "id",
            "name",
            "description",
            "price",
            "quantity",
            "in_stock",
            "updated_at",
        ]
