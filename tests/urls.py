from django.urls import include, path

urlpatterns = [
    path("api/", include("channels_binding.urls")),
]
