"""A project-level bindings module, found through BINDINGS_MODULES."""

from django.contrib.auth import get_user_model
from rest_framework import serializers

from channels_binding.bindings import AsyncBinding


class UserSerializer(serializers.ModelSerializer):
    # The original README's example renames a user "Changed Username": allow
    # spaces, which Django's default username validator refuses.
    username = serializers.CharField(max_length=150)

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "email"]


class UserBinding(AsyncBinding):
    model = get_user_model()
    serializer_class = UserSerializer
    search_fields = ["username", "email"]
    ordering_fields = ["username"]
