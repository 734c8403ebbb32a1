"""App config of `mission_control`."""

from django.apps import AppConfig


class MissionControlConfig(AppConfig):
    """The admin site for triggers, event types and event logs."""

    name = "mission_control"
    verbose_name = "Mission Control"
    default_auto_field = "django.db.models.BigAutoField"
