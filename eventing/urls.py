"""Operational URLs a project includes at its root: `path("", include("eventing.urls"))`."""

from django.urls import path

from eventing import views

app_name = "eventing"

urlpatterns = [
    path("metrics", views.metrics_view, name="metrics"),
    path("healthz", views.healthz_view, name="healthz"),
]
