"""The HTTP side: ``path("api/", include("channels_binding.urls"))``.

``events/`` answers any websocket frame, ``openapi.json`` describes the routes, and
every other path is a stream's REST route (``shop/Product/``, ``shop/Product/42/``),
resolved against the registry by :class:`.views.RestView`.
"""

from django.urls import path, re_path

from . import openapi, views

app_name = "channels_binding"

urlpatterns = [
    path("events/", views.EventsView.as_view(), name="events"),
    path("openapi.json", openapi.OpenAPIView.as_view(), name="openapi"),
    re_path(r"^(?P<route>.+?)/?$", views.RestView.as_view(), name="rest"),
]
