"""Public path (fixed) of the HTTP side, ``include("channels_binding.urls")``; a
re-export of :mod:`channels_binding.http.urls`."""

from .http.urls import app_name, urlpatterns

__all__ = ["app_name", "urlpatterns"]
