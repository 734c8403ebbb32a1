"""The standalone project's URLs plus a host project's own admin at /admin/ (tests.testapp.admin
.host_site): for the tests of what Eventing adds to a host's admin pages."""

from django.urls import path

from config.urls import urlpatterns as project_urlpatterns
from tests.testapp.admin import host_site

urlpatterns = [path("admin/", host_site.urls), *project_urlpatterns]
