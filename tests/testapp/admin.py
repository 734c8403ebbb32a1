"""Test models in Mission Control, so tests can save rows through the admin."""

from django.contrib import admin

from mission_control.sites import site
from tests.testapp.models import Customer


@admin.register(Customer, site=site)
class CustomerAdmin(admin.ModelAdmin):
    """Customers, editable: a save here is an admin user's write."""
