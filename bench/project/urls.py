from django.urls import path

from .catalog import views

urlpatterns = [
    path("bench/change/", views.change),
    path("bench/queries/", views.queries),
    path("bench/write/", views.write),
]
