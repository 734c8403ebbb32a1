"""A host URLconf that mounts the owners' portal under a path of its own choosing."""

from django.urls import include, path

urlpatterns = [path("account/webhooks/", include("eventing.portal.urls"))]
