"""Serializers made for reading (channels_binding.serializers.read_serializer):
the same output as DRF's, with fields built once per class; shared as they are
only where no field can tell two serializers apart, and never one mapping for
two serializers."""

import pytest
from rest_framework import serializers

from channels_binding.serializers import read_serializer
from tests.shop.models import Category, Product

pytestmark = pytest.mark.django_db


class Plain(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ["id", "name", "price", "in_stock", "category", "created"]


class WithMethod(serializers.ModelSerializer):
    who = serializers.SerializerMethodField()

    class Meta:
        model = Product
        fields = ["id", "name", "who"]

    def get_who(self, obj):
        return self.context["who"]


class OwnOutput(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ["id", "name"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["via"] = self.fields["name"].parent.context["who"]
        return data


@pytest.fixture
def product():
    category = Category.objects.create(name="c")
    return Product.objects.create(name="p", price="1.50", category=category)


def test_context_free_fields_are_shared_and_each_serializer_has_its_own_mapping(
    product,
):
    assert read_serializer(Plain, product, {}).data == Plain(product).data
    first = read_serializer(Plain, product, {})
    second = read_serializer(Plain, product, {})
    assert first.fields["name"] is second.fields["name"]
    first.fields.pop("name")  # as a binding trimming fields for one user may
    assert "name" not in first.data
    assert second.data == Plain(product).data
    assert read_serializer(Plain, product, {}).data == Plain(product).data


@pytest.mark.parametrize("cls", [WithMethod, OwnOutput])
def test_fields_that_may_read_their_serializer_are_copies(product, cls):
    first = read_serializer(cls, product, {"who": "alice"})
    second = read_serializer(cls, product, {"who": "bob"})
    assert first.fields["name"] is not second.fields["name"]
    key = "who" if cls is WithMethod else "via"
    assert first.data[key] == "alice" and second.data[key] == "bob"
    assert second.data == cls(product, context={"who": "bob"}).data
