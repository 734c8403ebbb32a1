"""App config of `eventing`: wires receivers and checks, never touches the database."""

from django.apps import AppConfig


class EventingConfig(AppConfig):
    """Events, deliveries and their logs."""

    name = "eventing"
    verbose_name = "Eventing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from eventing import checks  # noqa: F401 - registers the system checks
        from eventing.capture.actor import actor_connect
        from eventing.capture.database import capture_connect
        from eventing.capture.missed_writes import guard_connect
        from eventing.capture.signals import signals_connect
        from eventing.maintenance.listener import listener_connect
        from eventing.ops.bootsteps import connect_worker_step
        from eventing.runtime import connect_lifecycle

        signals_connect()
        actor_connect()
        capture_connect(self)
        guard_connect()
        listener_connect()
        connect_worker_step()
        connect_lifecycle()
