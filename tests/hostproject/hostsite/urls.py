"""URLs of the host project."""

from importlib.util import find_spec

from django.contrib import admin
from django.urls import include, path

from mission_control.sites import site as mission_control  # Eventing: Mission Control

urlpatterns = [
    path("admin/", admin.site.urls),
    path("mission-control/", mission_control.urls),  # Eventing: Mission Control
    path("", include("eventing.urls")),  # Eventing: /metrics and /healthz
]
if find_spec("eventing.api"):
    urlpatterns.append(path("", include("eventing.api.urls")))  # Eventing: the HTTP API
