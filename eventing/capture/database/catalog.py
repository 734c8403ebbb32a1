"""What the triggers ask for, and what the database catalog holds."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from django.db import DatabaseError, connections, models, transaction

from eventing.capture.database.mode import PREFIX, unservable_reason
from eventing.capture.database.plan import Plan, TriggerConfig, plan_for
from eventing.capture.database.sql import Place, ident
from eventing.models import EventCapture, EventLog
from triggers import types
from triggers.models import Trigger
from triggers.validation import resolve_model

logger = logging.getLogger(__name__)

# --- what the triggers ask for, what the catalog holds ----------------------------------------


@dataclass
class Wanted:
    """Every function the current triggers need, and the triggers that cannot be served."""

    plans: dict[tuple[str, str, str], Plan] = field(default_factory=dict)
    # (trigger name, model label, reason)
    unserved: list[tuple[str, str, str]] = field(default_factory=list)


def missing_trigger_fields(using: str) -> list[tuple[str, str, str, str]]:
    """Fields enabled DB triggers name that their model no longer has (a field renamed).

    (trigger name, model label, field, setting): a watch list naming a gone field never
    matches, so such a trigger records nothing and nobody is told, in either capture mode.
    """
    rows = (
        Trigger.objects.using(using)
        .filter(enabled=True, type__in=types.DB_TYPES)
        .order_by("name")
        .values_list("name", "source", "filter", "watch_fields", "payload_fields")
    )
    found = []
    for name, source, filter_, watch, payload in rows:
        model = resolve_model(source)
        if model is None:
            continue  # reported as unserved, or by trigger validation
        known = {f.name for f in model._meta.concrete_fields}
        known |= {f.attname for f in model._meta.concrete_fields}
        named = [("watch_fields", f) for f in watch or ()]
        named += [("payload_fields", f) for f in payload or ()]
        for path in filter_ or {}:
            head, _, rest = path.partition(".")
            if head in ("old", "new") and rest:
                named.append(("filter", rest.partition(".")[0]))
        found += [(name, source, f, where) for where, f in named if f not in known]
    return found


def table_schema(connection, table: str) -> str | None:
    """The schema `table` resolves to on the search path, or None if there is no such table."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.oid = to_regclass(%s)",
            [ident(table)],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def qualified(connection, table: str) -> str:
    """schema.table, quoted (the function must not depend on the writer's search_path)."""
    schema = table_schema(connection, table)
    if schema is None:
        raise DatabaseError(f"Table {table} does not exist.")
    return f"{ident(schema)}.{ident(table)}"


def wanted_functions(using: str, *, robust: bool = False) -> Wanted:
    """The functions the enabled DB triggers need, by (schema, table, kind)."""
    connection = connections[using]
    wanted = Wanted()
    rows = (
        Trigger.objects.using(using)
        .filter(enabled=True, type__in=types.DB_TYPES)
        .order_by("id")
        .values_list("id", "name", "type", "source", "filter", "watch_fields", "payload_fields")
    )
    grouped: dict[tuple[str, str], list[TriggerConfig]] = {}
    models_by_label: dict[str, type[models.Model]] = {}
    for pk, name, event_type, source, filter_, watch, payload in rows:
        model = resolve_model(source)
        reason = "not an installed model" if model is None else unservable_reason(model)
        if reason:
            wanted.unserved.append((name, source, reason))
            continue
        models_by_label[source] = model
        config = TriggerConfig(pk, name, filter_ or {}, tuple(watch or ()), tuple(payload or ()))
        grouped.setdefault((source, event_type), []).append(config)
    if not grouped:
        return wanted
    events_table = qualified(connection, EventLog._meta.db_table)
    captures_table = qualified(connection, EventCapture._meta.db_table)
    triggers_table = qualified(connection, Trigger._meta.db_table)
    for (label, event_type), configs in grouped.items():
        model = models_by_label[label]
        schema = table_schema(connection, model._meta.db_table)
        if schema is None:
            wanted.unserved.extend(
                (c.name, label, f"table {model._meta.db_table} does not exist") for c in configs
            )
            continue
        present = table_columns(connection, schema, model._meta.db_table)
        # A column the table lacks (a migration pending) reads as null, typed as the model says.
        column_types = {
            f.column: present.get(f.column) or f.db_type(connections[using]) or "text"
            for f in model._meta.concrete_fields
        }
        place = Place(schema, column_types, events_table, captures_table, triggers_table)
        plan = plan_for(event_type, model, configs, place, robust=robust)
        wanted.plans[(schema, plan.table, plan.kind)] = plan
    return wanted


@dataclass
class Attached:
    """One of our triggers as the catalog has it."""

    schema: str
    table: str
    kind: str
    trigger: str
    function_schema: str
    function: str
    comment: dict
    enabled: bool


@dataclass
class Catalog:
    """Our triggers (by schema, table, kind) and our functions (by schema, name → comment)."""

    attached: dict[tuple[str, str, str], Attached]
    functions: dict[tuple[str, str], dict]
    # (schema, name) → the function's signature as DROP FUNCTION takes it.
    signatures: dict[tuple[str, str], str] = field(default_factory=dict)


def parse_comment(text: str | None) -> dict:
    """A function's COMMENT as the dict `Plan.comment()` wrote ({} if it is not ours)."""
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def read_catalog(connection) -> Catalog:
    """Every eventing_capture_* trigger and function in the database."""
    attached = {}
    functions = {}
    signatures = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname, c.relname, t.tgname, pn.nspname, p.proname, "
            "obj_description(p.oid, 'pg_proc'), t.tgenabled <> 'D' "
            "FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_proc p ON p.oid = t.tgfoid "
            "JOIN pg_namespace pn ON pn.oid = p.pronamespace "
            "WHERE NOT t.tgisinternal AND left(t.tgname, %s) = %s",
            [len(PREFIX), PREFIX],
        )
        for schema, table, trigger, fschema, function, comment, enabled in cursor.fetchall():
            kind = trigger[len(PREFIX) :]
            attached[(schema, table, kind)] = Attached(
                schema, table, kind, trigger, fschema, function, parse_comment(comment), enabled
            )
        cursor.execute(
            "SELECT n.nspname, p.proname, obj_description(p.oid, 'pg_proc'), "
            "p.oid::regprocedure::text FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE left(p.proname, %s) = %s",
            [len(PREFIX), PREFIX],
        )
        for schema, name, comment, signature in cursor.fetchall():
            functions[(schema, name)] = parse_comment(comment)
            signatures[(schema, name)] = signature
    return Catalog(attached, functions, signatures)


def table_columns(connection, schema: str, table: str) -> dict[str, str]:
    """The table's columns and their SQL types (format_type), as the catalog has them.

    Read with only pg_catalog on the search path, so a type from another schema (an extension's,
    an enum) comes schema-qualified, as the generated functions, pinned to pg_catalog, need it.
    """
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('search_path'), set_config('search_path', 'pg_catalog', true)"
        )
        path = cursor.fetchone()[0]
        cursor.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
            [f"{ident(schema)}.{ident(table)}"],
        )
        columns = dict(cursor.fetchall())
        cursor.execute("SELECT set_config('search_path', %s, true)", [path])
    return columns


def missing_columns(connection, plan: Plan, model: type[models.Model]) -> list[str]:
    """Columns the model has that the table lacks (a migration not applied, or out-of-band DDL)."""
    present = table_columns(connection, plan.schema, plan.table)
    return [f.column for f in model._meta.concrete_fields if f.column not in present]
