"""URLs of the API; a host project mounts them with `path("", include("eventing.api.urls"))`."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from eventing.api import subscriptions, views

router = SimpleRouter()
router.register("events", views.EventViewSet, basename="eventing-event")
router.register("invocations", views.InvocationViewSet, basename="eventing-invocation")
router.register("triggers", views.TriggerViewSet, basename="eventing-trigger")
router.register("event-types", views.EventTypeViewSet, basename="eventing-event-type")
router.register(
    "subscriptions", subscriptions.SubscriptionViewSet, basename="eventing-subscription"
)
router.register("catalog", subscriptions.CatalogViewSet, basename="eventing-catalog")

urlpatterns = [
    path("api/eventing/schema/", SpectacularAPIView.as_view(), name="eventing-schema"),
    path(
        "api/eventing/docs/",
        SpectacularSwaggerView.as_view(url_name="eventing-schema"),
        name="eventing-docs",
    ),
    path("api/eventing/", include(router.urls)),
    path(
        "v1/api/<str:project>/eventing/queue",
        views.SpaceCloudQueueView.as_view(),
        name="eventing-space-cloud-queue",
    ),
    # Space Cloud clients post without a trailing slash; accept one too (not in the schema).
    path("v1/api/<str:project>/eventing/queue/", views.SpaceCloudQueueView.as_view(schema=None)),
    path(
        "v1/api/<str:project>/eventing/admin-queue",
        views.SpaceCloudAdminQueueView.as_view(),
        name="eventing-space-cloud-admin-queue",
    ),
    path(
        "v1/api/<str:project>/eventing/admin-queue/",
        views.SpaceCloudAdminQueueView.as_view(schema=None),
    ),
]
