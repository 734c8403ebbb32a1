"""Writes signal mode cannot see, reported as they happen (EVENTING["MISSED_WRITES"]).

In signal mode a DB event comes from `post_save` / `post_delete`. `QuerySet.update()`,
`bulk_create()`, `bulk_update()`, a delete's `on_delete=SET_NULL` and raw SQL send no signal,
so a table with DB triggers changes without an event. Django has no signal for them; the one
place every statement passes is a connection's execute wrappers, so `watch_writes` is added
there, and only in signal mode with the guard on (nothing is installed in database mode, which
captures every statement, nor under "ignore"). It costs a write to a table without triggers a
string test and a dict lookup; a write to a captured table also reads the call stack, to tell a
`save()` (which signals see) from the calls they miss.

What it cannot see: statements that do not go through Django's connections (another program,
a psycopg connection of its own), writes made inside database functions, procedures or views
(`SELECT my_function()`), and writes whose target table is not named right after `INSERT INTO`,
`UPDATE`, `DELETE FROM`, `MERGE INTO` or `TRUNCATE` (a table name built in PL/pgSQL). Writes
made while `migrate` runs (data migrations) are not reported.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import warnings
from dataclasses import dataclass
from types import FrameType

import django
from django.apps import apps
from django.conf import settings as django_settings
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import connections
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate, pre_migrate

from eventing.capture.database.mode import database_capture
from eventing.conf import settings
from eventing.store.trigger_cache import current_index
from triggers import types
from triggers.registry import TriggerIndex
from triggers.validation import INTERNAL_APPS

WARN, RAISE, IGNORE = "warn", "raise", "ignore"
MODES = (WARN, RAISE, IGNORE)
# A statement's first word: only these can write a table (WITH may hold a writing CTE).
WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "MERGE", "WITH", "TRUNCA")
# A written table: the word before it says how. Quoted or bare, optionally schema-qualified.
_NAME = r'(?:"[^"]+"|[A-Za-z_][\w$]*)'
TARGET_RE = re.compile(
    rf"\b(INSERT\s+INTO|UPDATE|DELETE\s+FROM|MERGE\s+INTO|TRUNCATE(?:\s+TABLE)?)\s+"
    rf"(?:ONLY\s+)?((?:{_NAME}\.)?{_NAME})",
    re.IGNORECASE,
)
# The DB event types a statement of each kind would have produced through signals.
VERB_TYPES = {
    "INSERT": (types.DB_INSERT,),
    "UPDATE": (types.DB_UPDATE,),
    "DELETE": (types.DB_DELETE,),
    "TRUNCATE": (types.DB_DELETE,),
    "MERGE": (types.DB_INSERT, types.DB_UPDATE, types.DB_DELETE),
}
DJANGO_DIR = os.path.dirname(django.__file__) + os.sep
MODELS_DIR = os.path.join(DJANGO_DIR, "db", "models") + os.sep
BACKENDS_DIR = os.path.join(DJANGO_DIR, "db", "backends") + os.sep
# Marks a statement issued by a delete's collector (not a function name).
COLLECTOR = "<collector>"


class MissedWriteError(RuntimeError):
    """A write signal mode cannot see, refused under EVENTING["MISSED_WRITES"] = "raise"."""


class MissedWriteWarning(RuntimeWarning):
    """A write signal mode cannot see (EVENTING["MISSED_WRITES"] = "warn")."""


@dataclass(frozen=True)
class Missed:
    """One statement's missed write: the model, the call that made it, the triggers it missed."""

    label: str
    table: str
    call: str
    triggers: tuple[str, ...]
    where: str
    verb: str = "UPDATE"

    def changed_nothing(self, cursor) -> bool:
        """Whether the statement changed no row: an UPDATE or DELETE whose row count is 0 (an
        INSERT's count is only known once its RETURNING rows are read, on SQLite)."""
        if self.verb not in ("UPDATE", "DELETE"):
            return False
        return getattr(cursor, "rowcount", -1) == 0

    def message(self) -> str:
        """What a developer reads: the model, the call, where, and the triggers it missed."""
        return (
            f"{self.label}: {self.call} at {self.where} wrote table {self.table} without model "
            f"signals, so DB trigger(s) {', '.join(self.triggers)} got no event (signal capture "
            "sees save() and delete() only). Save the rows one by one, use "
            'EVENTING["CAPTURE"] = "database", or send them afterwards with '
            "`manage.py eventing_reconcile <trigger> --since <time>`."
        )


# --- the setting ------------------------------------------------------------------------------


def in_test_environment() -> bool:
    """Whether Django's test environment is set up (its runner and pytest-django both call
    setup_test_environment, which creates mail.outbox; they also turn DEBUG off)."""
    return hasattr(mail, "outbox")


def missed_writes_mode() -> str:
    """EVENTING["MISSED_WRITES"], with None read as "warn" in DEBUG and tests, else "ignore"."""
    value = settings.MISSED_WRITES
    if value is not None:
        return value
    return WARN if django_settings.DEBUG or in_test_environment() else IGNORE


_migrating = {"now": False}


def guard_wanted() -> bool:
    """Whether writes are watched: signal capture, the guard on, settings valid."""
    try:
        return not database_capture() and missed_writes_mode() != IGNORE
    except ImproperlyConfigured:
        return False  # the system checks report it


# --- which tables have triggers ---------------------------------------------------------------

_tables: dict = {"index": None, "by_table": {}}


def captured_tables(index: TriggerIndex) -> dict[str, tuple[str, frozenset[str]]]:
    """Table name (lower case) -> (model label, DB event types with triggers), for `index`."""
    if _tables["index"] is index:
        return _tables["by_table"]
    by_table = {}
    for label, kinds in index.db_models.items():
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError):
            continue
        if model._meta.app_label not in INTERNAL_APPS:
            by_table[model._meta.db_table.lower()] = (label, kinds)
    _tables["index"], _tables["by_table"] = index, by_table
    return by_table


def bare_name(name: str) -> str:
    """`"public"."shop_order"` or `shop_order` -> `shop_order`."""
    return name.rsplit(".", 1)[-1].strip('"').lower()


def written_tables(sql: str) -> list[tuple[str, str]]:
    """(verb, table) of each table a statement names as written, verbs in their short form."""
    found = []
    for match in TARGET_RE.finditer(sql):
        verb = match.group(1).split()[0].upper()
        found.append((verb, bare_name(match.group(2))))
    return found


# --- which call made the statement ----------------------------------------------------------


def classify(verb: str) -> tuple[str | None, FrameType | None]:
    """The call that issued the running statement, or None when signals see it (a save(), a
    delete() through the collector) or Django itself runs it (flush, schema changes); and the
    first frame outside Django (the caller)."""
    frame = sys._getframe(1)
    # Our wrapper and any other execute wrapper stacked on it, then the cursor layer.
    while frame is not None and not frame.f_code.co_filename.startswith(DJANGO_DIR):
        frame = frame.f_back
    while frame is not None and frame.f_code.co_filename.startswith(BACKENDS_DIR):
        frame = frame.f_back
    names: set[str] = set()
    orm = False
    caller = frame
    while caller is not None and caller.f_code.co_filename.startswith(DJANGO_DIR):
        code = caller.f_code
        if code.co_filename.startswith(MODELS_DIR):
            orm = True
            names.add(code.co_name)
            if code.co_name == "save_base":
                return None, caller
            if code.co_name == "delete" and code.co_filename.endswith("deletion.py"):
                if verb == "DELETE":
                    return None, caller
                names.add(COLLECTOR)  # a SET_NULL / SET_DEFAULT update of related rows
        caller = caller.f_back
    if frame is not caller and not orm:
        return None, caller  # Django's own machinery: flush, the schema editor
    for name, call in (
        (COLLECTOR, "on_delete=SET_NULL/SET_DEFAULT (Collector.delete)"),
        ("bulk_update", "bulk_update()"),
        ("bulk_create", "bulk_create()"),
        ("update", "QuerySet.update()"),
        ("_raw_delete", "QuerySet._raw_delete()"),
    ):
        if name in names:
            return call, caller
    return ("raw SQL (cursor.execute)" if not orm else "an ORM call without signals"), caller


def where(frame: FrameType | None) -> str:
    """`path/to/views.py:42` of a frame, relative to the working directory when inside it."""
    if frame is None:
        return "an unknown place"
    path = frame.f_code.co_filename
    with contextlib.suppress(ValueError):  # another drive (Windows)
        path = os.path.relpath(path)
    return f"{path}:{frame.f_lineno}"


def stacklevel_of(frame: FrameType | None) -> int:
    """The warnings.warn stacklevel that attributes a warning raised from report() to
    `frame` (Python's default filter then shows it once per place in the caller's code)."""
    level, current = 2, sys._getframe(2)
    while current is not None and current is not frame:
        current, level = current.f_back, level + 1
    return level if current is not None else 2


# --- the wrapper ------------------------------------------------------------------------------


def missed_write(sql: str) -> tuple[Missed, FrameType | None] | None:
    """The missed write a statement makes on a captured table, or None."""
    if _migrating["now"]:
        return None
    index = current_index()
    tables = captured_tables(index)
    if not tables:
        return None
    for verb, table in written_tables(sql):
        if table not in tables:
            continue
        label, kinds = tables[table]
        wanted = set(VERB_TYPES[verb])
        if verb == "INSERT" and "DO UPDATE" in sql.upper():
            wanted.add(types.DB_UPDATE)  # bulk_create(update_conflicts=True)
        missed_types = sorted(wanted & kinds)
        if not missed_types:
            continue
        call, caller = classify(verb)
        if call is None:
            return None
        names = tuple(
            f"{spec.name} ({kind})" for kind in missed_types for spec in index.find(kind, label)
        )
        return Missed(label, table, call, names, where(caller), verb), caller
    return None


def watch_writes(execute, sql, params, many, context):
    """Execute wrapper: report a write to a table with DB triggers that no signal will see.

    "raise" refuses the statement before it runs; "warn" runs it and warns when it changed rows.
    """
    if not isinstance(sql, str) or not sql.lstrip()[:6].upper().startswith(WRITE_VERBS):
        return execute(sql, params, many, context)
    found = missed_write(sql)
    if found is None:
        return execute(sql, params, many, context)
    missed, caller = found
    mode = missed_writes_mode()
    if mode == RAISE:
        raise MissedWriteError(missed.message())
    result = execute(sql, params, many, context)
    if mode == WARN and not missed.changed_nothing(context.get("cursor")):
        warnings.warn(missed.message(), MissedWriteWarning, stacklevel=stacklevel_of(caller))
    return result


# --- wiring -----------------------------------------------------------------------------------


def install_guard(sender=None, connection=None, **kwargs) -> None:
    """Add or remove `watch_writes` on a connection, as the settings want."""
    if connection is None:
        return
    present = watch_writes in connection.execute_wrappers
    if guard_wanted():
        if not present:
            # First, not last: `connection.execute_wrapper()` blocks pop the last wrapper when
            # they end, so one added while such a block is open must not sit on top of it.
            connection.execute_wrappers.insert(0, watch_writes)
    elif present:
        connection.execute_wrappers.remove(watch_writes)


def _reinstall(*, setting: str, **kwargs) -> None:
    """EVENTING or DEBUG changed (tests, a switch-over): every open connection follows."""
    if setting in ("EVENTING", "DEBUG"):
        for connection in connections.all(initialized_only=True):
            install_guard(connection=connection)


def _migrate_starts(**kwargs) -> None:
    _migrating["now"] = True


def _migrate_ends(**kwargs) -> None:
    _migrating["now"] = False


def guard_connect() -> None:
    """Wire the guard (called from AppConfig.ready())."""
    connection_created.connect(install_guard, dispatch_uid="eventing.missed_writes")
    setting_changed.connect(_reinstall, dispatch_uid="eventing.missed_writes_reinstall")
    pre_migrate.connect(_migrate_starts, dispatch_uid="eventing.missed_writes_migrating")
    post_migrate.connect(_migrate_ends, dispatch_uid="eventing.missed_writes_migrated")
