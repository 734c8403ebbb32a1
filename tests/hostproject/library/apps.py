"""App config of the library app."""

from django.apps import AppConfig


class LibraryConfig(AppConfig):
    """Books of the host project."""

    name = "library"
    default_auto_field = "django.db.models.BigAutoField"
