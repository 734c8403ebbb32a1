"""Where the event tables live (`EVENTING["DATABASE"]`), and the manager that queries them there.

Every model of `triggers` and `eventing` uses `EventsDatabaseManager`, so `Model.objects…`
always means the events database: a query built at import time (a view's `queryset`) follows
the setting, and no other router (a read replica's, say) sends these queries elsewhere.
`eventing.router.EventingRouter` is still needed for what a manager cannot see: saving a new
instance (`Model.save()`) and migrations; check `eventing.E007` refuses a separate database
without it.

`triggers` imports nothing from `eventing`, so the default repeats
`eventing.conf.DEFAULTS["DATABASE"]`; a test keeps the two equal.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

FALLBACK_DATABASE = "default"


def events_database() -> str:
    """The alias holding event_triggers, event_types, event_logs, invocation_logs, heartbeats."""
    return (getattr(settings, "EVENTING", None) or {}).get("DATABASE", FALLBACK_DATABASE)


class EventsDatabaseQuerySet(models.QuerySet):
    """A queryset that runs on `EVENTING["DATABASE"]` unless `.using()` names another alias."""

    @property
    def db(self) -> str:
        """The alias this query runs on, read when it runs (never at import)."""
        return self._db or events_database()


class EventsDatabaseManager(models.Manager.from_queryset(EventsDatabaseQuerySet)):
    """The default manager of every event table: its querysets run on the events database."""

    @property
    def db(self) -> str:
        """The alias this manager's queries run on."""
        return self._db or events_database()
