"""A project-level bindings module, found through BINDINGS_MODULES."""

from django.contrib.auth import get_user_model

from channels_binding.bindings import AsyncBinding


class UserBinding(AsyncBinding):
    model = get_user_model()
    fields = ["id", "username", "email"]
    search_fields = ["username", "email"]
    ordering_fields = ["username"]
