"""Status, sync and drop: the catalog brought in step with the triggers."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db import connections, transaction

from eventing.capture.database import expand_function
from eventing.capture.database.catalog import (
    Catalog,
    Wanted,
    missing_columns,
    missing_trigger_fields,
    qualified,
    read_catalog,
    wanted_functions,
)
from eventing.capture.database.expand import expand_all
from eventing.capture.database.mode import EXPAND, KINDS, PREFIX, SYNC_LOCK_KEY, database_capture
from eventing.capture.database.plan import Plan, expander_name
from eventing.capture.database.sql import ident, literal
from eventing.conf import settings
from eventing.models import EventCapture
from triggers import types
from triggers.models import Trigger
from triggers.validation import resolve_model

logger = logging.getLogger(__name__)

# --- status, sync, drop ----------------------------------------------------------------------


OK, MISSING, STALE, DISABLED, ORPHAN, UNSERVED, BROKEN = (
    "ok",
    "missing",
    "stale",
    "disabled",
    "orphan",
    "unserved",
    "broken",
)


@dataclass
class TableStatus:
    """One line of `eventing_capture status`: a table's function for one event kind."""

    table: str
    kind: str
    state: str
    function: str = ""
    triggers: list[str] = field(default_factory=list)
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.state == OK


def capture_status(using: str | None = None) -> list[TableStatus]:
    """Each table's capture function and whether it matches the current triggers.

    In signal mode every installed function is reported (it would double the events); in
    database mode each needed function is ok, missing, stale (the triggers changed, or the
    table or its columns did) or disabled, and an installed function nothing needs is an orphan.
    """
    db = using or settings.DATABASE
    connection = connections[db]
    if connection.vendor != "postgresql":
        return []
    catalog = read_catalog(connection)
    wanted = wanted_functions(db) if database_capture() else Wanted()
    lines = []
    for key, plan in sorted(wanted.plans.items()):
        current = catalog.attached.get(key)
        stored = catalog.functions.get((plan.schema, plan.function), {})
        expander = catalog.functions.get((plan.schema, plan.expander), {})
        state, detail = OK, ""
        if current is None:
            state, detail = MISSING, "no trigger on the table"
        elif current.function != plan.function or {stored.get("hash"), expander.get("hash")} != {
            plan.digest
        }:
            state = STALE
            was = current.comment.get("table")
            detail = (
                f"table renamed from {was}"
                if was and was != plan.table
                else "the function differs from what the triggers (or the model) generate"
            )
        elif not current.enabled:
            state, detail = DISABLED, "the trigger on the table is disabled"
        gaps = missing_columns(connection, plan, resolve_model(plan.model_label))
        if gaps:
            detail = "; ".join(
                filter(None, [detail, f"columns missing in the table: {', '.join(gaps)}"])
            )
            state = STALE if state == OK else state
        lines.append(
            TableStatus(plan.table, plan.kind, state, plan.function, plan.triggers, detail)
        )
    for key, current in sorted(catalog.attached.items()):
        if key in wanted.plans:
            continue
        reason = (
            "installed while EVENTING['CAPTURE'] is 'signals': events would be recorded twice"
            if not database_capture()
            else "no enabled trigger needs it"
        )
        lines.append(
            TableStatus(
                current.table,
                current.kind,
                ORPHAN,
                current.function,
                current.comment.get("triggers", []),
                reason,
            )
        )
    for name, label, reason in wanted.unserved:
        lines.append(TableStatus(label, "", UNSERVED, "", [name], reason))
    if database_capture():
        lines += broken_lines(db)
    return lines


def broken_lines(using: str) -> list[TableStatus]:
    """A line per field a trigger names that its model lacks (see docs/operations.md)."""
    return [
        TableStatus(
            label,
            "",
            BROKEN,
            "",
            [name],
            f"trigger {name!r} names field {field!r} in {where}, which {label} does not have "
            "(renamed?); it records nothing for it. Edit the trigger",
        )
        for name, label, field, where in missing_trigger_fields(using)
    ]


def describe_capture(trigger: Trigger) -> str:
    """How a trigger's DB events are captured, in a sentence (Mission Control's trigger page)."""
    if not types.is_db_type(trigger.type):
        return "Not a DB trigger."
    if not database_capture():
        return "Model signals (post_save / post_delete): EVENTING['CAPTURE'] is 'signals'."
    if not trigger.pk:
        return "A PostgreSQL trigger function, installed when the trigger is saved."
    if not trigger.enabled:
        return "No trigger function while the trigger is disabled."
    for line in capture_status():
        if trigger.name in line.triggers and line.kind in ("", KINDS[trigger.type]):
            where = f"PostgreSQL trigger function {line.function or '-'} on {line.table}"
            if line.ok:
                return f"{where}: ok."
            return f"{where}: {line.state} ({line.detail}). Run `manage.py eventing_capture sync`."
    return "No trigger function found. Run `manage.py eventing_capture sync`."


@contextlib.contextmanager
def locked_for_sync(db: str) -> Iterator:
    """A transaction holding the sync lock, so two syncs (or a sync and a drop) never interleave."""
    with transaction.atomic(using=db), connections[db].cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SYNC_LOCK_KEY])
        yield cursor


def postgres_alias(using: str | None) -> str | None:
    """The alias sync and drop work on, or None off PostgreSQL (nothing to do there)."""
    db = using or settings.DATABASE
    return db if connections[db].vendor == "postgresql" else None


def sync(using: str | None = None, *, robust: bool = False) -> list[str]:
    """Install, replace or drop functions and triggers until they match the triggers.

    Runs in one transaction (a savepoint inside the caller's): a Trigger saved in a
    transaction has its function in the same one. Captures already written are expanded first,
    by the functions that wrote them. In signal mode everything is dropped. `robust` installs
    the expanders that read each value from the captured JSON (while migrations run).
    Returns what was done, one line each (a trigger function stands for its expander).
    """
    db = postgres_alias(using)
    if db is None:
        return []
    connection, actions = connections[db], []
    with locked_for_sync(db) as cursor:
        if expand_function.install(connection):
            actions.append(f"installed {expand_function.NAME} version {expand_function.VERSION}")
        expand_all(db)
        wanted = wanted_functions(db, robust=robust) if database_capture() else Wanted()
        catalog = read_catalog(connection)
        captures_table = qualified(connection, EventCapture._meta.db_table)
        for key, plan in wanted.plans.items():
            target = f"{ident(plan.schema)}.{ident(plan.table)}"
            function = f"{ident(plan.schema)}.{ident(plan.function)}"
            expander = f"{ident(plan.schema)}.{ident(plan.expander)}({captures_table})"
            stored = catalog.functions.get((plan.schema, plan.function))
            expands = catalog.functions.get((plan.schema, plan.expander), {})
            if (
                stored is None
                or plan.digest != stored.get("hash")
                or expands.get("hash") != plan.digest
            ):
                # The expander first: the trigger function names it.
                cursor.execute(plan.expander_definition)
                cursor.execute(f"COMMENT ON FUNCTION {expander} IS {literal(plan.comment())}")
                cursor.execute(plan.definition)
                cursor.execute(f"COMMENT ON FUNCTION {function}() IS {literal(plan.comment())}")
                # EXECUTE goes to PUBLIC by default: the expander is the listener's alone (a
                # row value of event_captures needs no privilege to build), and a trigger
                # fires without the writer's EXECUTE.
                cursor.execute(f"REVOKE ALL ON FUNCTION {expander} FROM PUBLIC")
                cursor.execute(f"REVOKE ALL ON FUNCTION {function}() FROM PUBLIC")
                verb = "installed" if stored is None else "replaced"
                actions.append(f"{verb} {plan.function} ({', '.join(plan.triggers)})")
            current = catalog.attached.get(key)
            if (
                current is None
                or not current.enabled
                or (current.function_schema, current.function) != (plan.schema, plan.function)
            ):
                cursor.execute(f"DROP TRIGGER IF EXISTS {ident(plan.trigger_name)} ON {target}")
                cursor.execute(create_trigger_sql(plan, target, function))
                actions.append(f"created trigger {plan.trigger_name} on {plan.table}")
        needed = {(p.schema, name) for p in wanted.plans.values() for name in p.functions}
        foreign = not_ours_to_drop(db, wanted, catalog) if database_capture() else set()
        for key, current in catalog.attached.items():
            if key in wanted.plans:
                continue
            if key in foreign:
                actions.append(
                    f"kept trigger {current.trigger} on {current.table}: enabled triggers need "
                    f"it but this process's models do not name table {current.table} (a newer "
                    "deploy renamed it?); sync from a process with the current models"
                )
                continue
            target = f"{ident(current.schema)}.{ident(current.table)}"
            cursor.execute(f"DROP TRIGGER IF EXISTS {ident(current.trigger)} ON {target}")
            actions.append(f"dropped trigger {current.trigger} on {current.table}")
        for key in foreign:
            kept = catalog.attached[key]
            table = kept.comment.get("table", kept.table)
            needed.add((kept.function_schema, kept.function))
            needed.add((kept.function_schema, expander_name(table, kept.kind)))
        actions += drop_functions(cursor, catalog, keep=needed)
    return actions


def not_ours_to_drop(db: str, wanted: Wanted, catalog: Catalog) -> set[tuple[str, str, str]]:
    """Installed triggers this process must not drop though it plans nothing for their table.

    The database says what is wanted: an enabled DB trigger on the model the function was
    generated for, of its event type. When this process planned nothing for that model and
    type, its models are older (or newer) than the table's (a rolling deploy with a renamed
    table): the trigger is left to a process whose models match.
    """
    enabled = set(
        Trigger.objects.using(db)
        .filter(enabled=True, type__in=types.DB_TYPES)
        .values_list("source", "type")
    )
    planned = {(plan.model_label, plan.event_type) for plan in wanted.plans.values()}
    return {
        key
        for key, current in catalog.attached.items()
        if key not in wanted.plans
        and (current.comment.get("model"), current.comment.get("type")) in enabled - planned
    }


def drop_functions(cursor, catalog: Catalog, keep: set[tuple[str, str]]) -> list[str]:
    """Drop our functions but those in `keep`; one line per trigger function dropped."""
    actions = []
    for key, signature in catalog.signatures.items():
        if key not in keep:
            cursor.execute(f"DROP FUNCTION IF EXISTS {signature}")
            if not key[1].startswith(PREFIX + EXPAND):
                actions.append(f"dropped {key[1]}")
    return actions


def create_trigger_sql(plan: Plan, target: str, function: str) -> str:
    """A statement-level AFTER trigger with the transition tables the function reads."""
    referencing = {
        "insert": "NEW TABLE AS new_rows",
        "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "delete": "OLD TABLE AS old_rows",
    }[plan.kind]
    return (
        f"CREATE TRIGGER {ident(plan.trigger_name)} AFTER {plan.kind.upper()} ON {target} "
        f"REFERENCING {referencing} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
    )


def drop(using: str | None = None) -> list[str]:
    """Drop every capture trigger and function (whatever the mode); what was dropped.

    Captures already written are expanded first, so switching back to signals loses nothing.
    """
    db = postgres_alias(using)
    if db is None:
        return []
    actions = []
    with locked_for_sync(db) as cursor:
        expand_all(db)
        catalog = read_catalog(connections[db])
        for current in catalog.attached.values():
            target = f"{ident(current.schema)}.{ident(current.table)}"
            cursor.execute(f"DROP TRIGGER IF EXISTS {ident(current.trigger)} ON {target}")
            actions.append(f"dropped trigger {current.trigger} on {current.table}")
        actions += drop_functions(cursor, catalog, keep=set())
    return actions
