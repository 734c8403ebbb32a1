"""Switching capture modes while processes of both modes run: every write recorded once.

The database decides who records a write:
- A process in signal mode says so on each of its PostgreSQL sessions (`eventing.capture =
  'signals'`); a capture trigger function stands down for such a session's writes, so the
  process's signal receivers record them, whether a trigger exists or not.
- A process in database mode lets its signal receivers stand down for a write only when a
  trigger function captured it, which it learns after the write: a function that captures a
  statement marks the writing session (`eventing.captured`, table and kind). So a `sync`
  landing anywhere around a save, even between an autocommit write and its post_save, gives
  one recorder: the function if it was attached when the statement ran, else the receivers.
  A trigger function installed before functions marked sessions is trusted as attached.
So signal-mode processes may change mode before, while or after `sync` (docs/operations.md).
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.db import connections, models, transaction

from eventing.capture.database.mode import DATABASE, KINDS, PREFIX, SIGNALS
from eventing.capture.database.sql import ident
from eventing.capture.database.writer import SESSION_MARKS, SESSION_MODE, session_mark
from eventing.conf import settings

# Per model: the DB event types whose trigger function was seen attached (committed). Attached
# functions are dropped only once no process runs database mode (docs/operations.md), so a
# write made after a type was seen is captured; for one made before, the session's marks say.
_attached: dict[type[models.Model], frozenset[str]] = {}


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
    _attached.clear()
    for connection in connections.all(initialized_only=True):
        if connection.vendor == "postgresql" and connection.is_usable():
            tell_session(connection=connection)


def attached_types(model: type[models.Model]) -> frozenset[str]:
    """The DB event types of `model` whose trigger functions were seen attached.

    Read before a write (pre_save, pre_delete): a write made after this captures those types.
    """
    return _attached.get(model, frozenset())


def captured_types(model: type[models.Model], unsure: frozenset[str], using: str) -> frozenset:
    """Of the DB event types `unsure`, those a trigger function captured the write just made.

    Asked after the write (post_save, post_delete) for the types not seen attached before it:
    the session's marks say which functions captured a statement of it (a function attached
    after an autocommit write committed did not capture it, though it is there now). A function
    that does not mark sessions (installed by an older release, until `sync` replaces it) is
    trusted to have captured, as before marks. The types attached now are remembered for later
    writes once this transaction commits.
    """
    table = model._meta.db_table
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT pg_catalog.current_setting(%s, true), "
            "ARRAY(SELECT pg_catalog.substr(t.tgname, %s) || "
            "CASE WHEN pg_catalog.strpos(p.prosrc, %s) = 0 THEN ' unmarking' ELSE '' END "
            "FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid "
            "WHERE t.tgrelid = pg_catalog.to_regclass(%s) AND NOT t.tgisinternal "
            "AND t.tgenabled <> 'D' AND pg_catalog.left(t.tgname, %s) = %s)",
            [SESSION_MARKS, len(PREFIX) + 1, SESSION_MARKS, ident(table), len(PREFIX), PREFIX],
        )
        marks, attached = cursor.fetchone()
    attached = {name.split()[0]: name.endswith(" unmarking") for name in attached}
    now = frozenset(t for t, kind in KINDS.items() if kind in attached)
    if now - attached_types(model):
        connection = connections[using]
        if connection.in_atomic_block:
            transaction.on_commit(lambda: remember(model, now), using=using)
        elif connection.get_autocommit():
            remember(model, now)
        # Else a transaction managed by hand (set_autocommit(False)): asked again next time.
    return frozenset(
        event_type
        for event_type in unsure
        if session_mark(table, KINDS[event_type]) in (marks or "")
        or attached.get(KINDS[event_type], False)
    )


def remember(model: type[models.Model], types: frozenset[str]) -> None:
    """The transaction that saw `types` attached committed: later writes are captured."""
    _attached[model] = _attached.get(model, frozenset()) | types
