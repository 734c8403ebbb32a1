"""Routes the eventing and triggers tables to EVENTING["DATABASE"].

Queries through the models' managers name that database themselves (triggers.database); the
router is what sends the rest there: saving a new instance (`Model.save()`, the admin's add
form) and migrations (`migrate --database <alias>` creates the tables only there). Check
`eventing.E007` refuses a separate EVENTING["DATABASE"] without it.
"""

from eventing.conf import settings

ROUTED_APPS = {"eventing", "triggers"}


class EventingRouter:
    """Send reads, writes and migrations of our apps to the configured alias."""

    def db_for_read(self, model, **hints):
        if model._meta.app_label in ROUTED_APPS:
            return settings.DATABASE
        return None

    db_for_write = db_for_read

    def allow_relation(self, obj1, obj2, **hints):
        if {obj1._meta.app_label, obj2._meta.app_label} <= ROUTED_APPS:
            return True
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label in ROUTED_APPS:
            return db == settings.DATABASE
        return None
