from django.contrib import admin
from django.urls import include, path

from catalog.views import DemoPage

urlpatterns = [
    path(
        "",
        DemoPage.as_view(template_name="catalog/index.html", page="catalog"),
        name="index",
    ),
    path(
        "notes/",
        DemoPage.as_view(template_name="catalog/notes.html", page="notes"),
        name="notes",
    ),
    path(
        "chat/",
        DemoPage.as_view(template_name="catalog/chat.html", page="chat"),
        name="chat",
    ),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    # The HTTP side of the same events (SPEC section 6).
    path("api/", include("channels_binding.urls")),
]
