"""A project-level bindings module, found through BINDINGS_MODULES."""

from django.contrib.auth import get_user_model
from rest_framework import serializers
from rest_framework.validators import UniqueValidator

from channels_binding.bindings import AsyncBinding


class UserSerializer(serializers.ModelSerializer):
    # The original README's example renames a user "Changed Username": allow
    # spaces, which Django's default username validator refuses. Declaring the
    # field drops the model's validators, so uniqueness is declared again (else a
    # taken name is an IntegrityError: a 500, found by tests/test_fuzz.py).
    username = serializers.CharField(
        max_length=150,
        validators=[UniqueValidator(queryset=get_user_model().objects.all())],
    )

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "email"]


class UserBinding(AsyncBinding):
    model = get_user_model()
    serializer_class = UserSerializer
    search_fields = ["username", "email"]
    ordering_fields = ["username"]
