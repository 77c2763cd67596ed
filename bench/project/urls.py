from django.apps import apps
from django.urls import include, path

from .catalog import views
from .catalog.rest import router

urlpatterns = [
    path("bench/change/", views.change),
    path("bench/queries/", views.queries),
    path("bench/write/", views.write),
    # The HTTP baseline, served by every stack; ``make bench`` asks the ``hand``
    # stack's server.
    path("drf/", include(router.urls)),
]
if apps.is_installed("channels_binding"):
    urlpatterns.append(path("api/", include("channels_binding.urls")))
