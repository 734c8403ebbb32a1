"""App config of the test app."""

from django.apps import AppConfig


class TestAppConfig(AppConfig):
    """Models for trigger tests."""

    name = "tests.testapp"
    label = "testapp"
    default_auto_field = "django.db.models.BigAutoField"
