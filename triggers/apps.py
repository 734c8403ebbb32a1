"""App config of `triggers`."""

from django.apps import AppConfig


class TriggersConfig(AppConfig):
    """Trigger and EventType definitions."""

    name = "triggers"
    verbose_name = "Triggers"
    default_auto_field = "django.db.models.BigAutoField"
