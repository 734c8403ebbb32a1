"""Switching capture modes while processes of both modes run: every write recorded once.

The database decides who records a write:
- A process in signal mode says so on each of its PostgreSQL sessions (`eventing.capture =
  'signals'`); a capture trigger function stands down for such a session's writes, so the
  process's signal receivers record them, whether a trigger exists or not.
- A process in database mode lets its signal receivers stand down for a table only when the
  table's capture trigger exists (pg_trigger, read in the writing transaction: `sync` waits
  for the writer's lock to create a trigger). Until `sync` installed it, its receivers record.
  In autocommit the write has committed before post_save reads the catalog: a first sync
  landing in between loses that write, so run it before database-mode processes start.
So signal-mode processes may change mode before, while or after `sync` (docs/operations.md).
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.db import connections, models

from eventing.capture.database.mode import DATABASE, KINDS, PREFIX, SIGNALS
from eventing.capture.database.writer import SESSION_MODE
from eventing.conf import settings

_KIND_TYPES = {kind: event_type for event_type, kind in KINDS.items()}
# Per model: the DB event types whose capture trigger this process saw installed. Installed
# triggers are dropped only once no process runs database mode (docs/operations.md), so a
# type seen installed stays so; a type not seen is read again at each write.
_installed: dict[type[models.Model], frozenset[str]] = {}


def session_mode() -> str:
    """What this process tells its sessions: 'signals', or '' in database mode."""
    try:
        return SIGNALS if settings.CAPTURE != DATABASE else ""
    except ImproperlyConfigured:
        return SIGNALS


def tell_session(sender=None, connection=None, **kwargs) -> None:
    """On a new PostgreSQL connection: tell the trigger functions this process's mode."""
    if connection is None or connection.vendor != "postgresql":
        return
    mode = session_mode()
    if not mode and sender is not None:
        return  # a new session holds no setting: nothing to clear
    with connection.connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, %s, false)", [SESSION_MODE, mode])


def retell_sessions(*, setting: str, **kwargs) -> None:
    """EVENTING changed (tests, a process switched in place): tell the open sessions."""
    if setting != "EVENTING":
        return
    _installed.clear()
    for connection in connections.all(initialized_only=True):
        if connection.vendor == "postgresql" and connection.is_usable():
            tell_session(connection=connection)


def installed_types(model: type[models.Model], wanted: frozenset[str], using: str) -> frozenset:
    """Of the DB event types `wanted`, those whose capture trigger is on `model`'s table."""
    seen = _installed.get(model, frozenset())
    if wanted <= seen:
        return wanted
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT t.tgname FROM pg_trigger t WHERE t.tgrelid = to_regclass(%s) "
            "AND NOT t.tgisinternal AND t.tgenabled <> 'D' AND left(t.tgname, %s) = %s",
            ['"' + model._meta.db_table.replace('"', '""') + '"', len(PREFIX), PREFIX],
        )
        names = [row[0][len(PREFIX) :] for row in cursor.fetchall()]
    seen = _installed[model] = frozenset(_KIND_TYPES[n] for n in names if n in _KIND_TYPES)
    return wanted & seen
