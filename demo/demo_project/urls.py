from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView

urlpatterns = [
    path("", TemplateView.as_view(template_name="catalog/index.html"), name="index"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    # The HTTP side of the same events (SPEC section 6).
    path("api/", include("channels_binding.urls")),
]
