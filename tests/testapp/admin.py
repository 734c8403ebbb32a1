"""Test models in Mission Control, so tests can save rows through the admin; and a host
project's own admin site (`host_site`, at /admin/ in tests.testapp.urls) whose Order pages show
the event timeline."""

from django.contrib import admin

from eventing.admin import EventTimelineMixin
from mission_control.sites import site
from tests.testapp.models import Customer, Order


@admin.register(Customer, site=site)
class CustomerAdmin(admin.ModelAdmin):
    """Customers, editable: a save here is an admin user's write."""


# The host project's own admin, beside Mission Control: what a project's `admin.site` is.
host_site = admin.AdminSite(name="host_admin")


@admin.register(Order, site=host_site)
class OrderAdmin(EventTimelineMixin, admin.ModelAdmin):
    """Orders in the host's admin, each change page with the events about that order."""

    list_display = ("id", "status", "total")
