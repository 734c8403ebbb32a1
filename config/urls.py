"""URLs of the standalone project."""

from django.urls import include, path
from django.views.generic import RedirectView

from mission_control.sites import site as mission_control

urlpatterns = [
    path("", RedirectView.as_view(url="/mission-control/", permanent=False)),
    path("mission-control/", mission_control.urls),
    # The HTTP API: /api/eventing/… and the Space Cloud queue endpoint /v1/api/<project>/…
    path("", include("eventing.api.urls")),
    # The owners' portal (eventing.portal_url(owner) links into it)
    path("portal/", include("eventing.portal.urls")),
    # /metrics (Prometheus) and /healthz
    path("", include("eventing.urls")),
]
