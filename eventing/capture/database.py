"""Database capture: PostgreSQL trigger functions capture DB events in the writing statement.

With `EVENTING["CAPTURE"] = "database"` every table with DB triggers gets one statement-level
AFTER trigger per event kind. Its function stores the statement's rows (the transition table as
one JSON array, built in one pass) as a single row of the narrow, append-only `event_captures`
table and `pg_notify`s at commit; that is all a write pays. After commit the listener (the
sweeper when no listener runs) calls the table's generated *expander* on each capture: it builds
the same `data` the signal receivers build (values rendered as `model_data.json_safe` renders
them), applies each trigger's watch list, filter and payload fields in SQL, inserts one
`event_logs` row per (row, trigger) with a single `INSERT … SELECT` and deletes the capture in
the same transaction; then the rows are published.

The trigger configuration is baked into the generated functions, regenerated whenever a Trigger
changes (same transaction; the captures written before are expanded first, before the change is
written); a hash in `COMMENT ON FUNCTION` tells a stale function from a current one. Expanders
read the rows back as typed columns; while `migrate` runs they read each value from the JSON
instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.apps import AppConfig
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.signals import setting_changed
from django.db import DatabaseError, connections, models, router, transaction
from django.db.models.signals import (
    post_delete,
    post_migrate,
    post_save,
    pre_delete,
    pre_migrate,
    pre_save,
)
from django.dispatch import receiver

from eventing.capture.actor import SETTING as ACTOR_SETTING
from eventing.capture.model_data import MAX_SAFE_INT, sensitive_fields
from eventing.conf import get_settings, settings
from eventing.models import EventCapture, EventLog, EventStatus
from triggers import types
from triggers.matching import MAX_KEY_CHARS
from triggers.models import Trigger
from triggers.validation import DB_SOURCE_CHECKS, INTERNAL_APPS, resolve_model

logger = logging.getLogger(__name__)

SIGNALS, DATABASE = "signals", "database"
MODES = (SIGNALS, DATABASE)
# The listener LISTENs here. Payloads are empty: PostgreSQL folds a transaction's identical
# notifications into one, so a 100-statement transaction wakes the listener once.
CHANNEL = "eventing_capture"
# Names of our triggers and functions start with this (how the catalog finds them).
PREFIX = "eventing_capture_"
# …and an expander's name continues with this.
EXPAND = "expand_"
KINDS = {types.DB_INSERT: "insert", types.DB_UPDATE: "update", types.DB_DELETE: "delete"}
# Serialises syncs (two trigger edits at once would otherwise race on CREATE OR REPLACE).
SYNC_LOCK_KEY = int.from_bytes(hashlib.sha256(b"eventing.capture.sync").digest()[:8], "big") >> 1
# jsonb_build_object takes at most 100 arguments: build wide rows in parts of this many fields.
FIELDS_PER_OBJECT = 50
# Captures one expansion pass takes (one transaction).
CAPTURES_PER_PASS = 500
# Python writes integral floats below this as "1.0"; PostgreSQL's float output drops the ".0".
FLOAT_REPR_EXPONENT_AT = "1e16"


# --- the mode -------------------------------------------------------------------------------


def capture_mode() -> str:
    """EVENTING["CAPTURE"]: "signals" or "database"."""
    return settings.CAPTURE


def database_capture() -> bool:
    """Whether trigger functions capture DB events: CAPTURE = "database" on PostgreSQL.

    On another database the signal receivers keep capturing (system check eventing.E009 says
    why), so a misconfiguration never loses events.
    """
    return settings.CAPTURE == DATABASE and connections[settings.DATABASE].vendor == "postgresql"


def same_database(alias: str, other: str) -> bool:
    """Whether two aliases reach the same database (same engine, server and name)."""
    if alias == other:
        return True
    a, b = connections.settings[alias], connections.settings[other]
    keys = ("ENGINE", "NAME", "HOST", "PORT")
    return all((a.get(k) or "") == (b.get(k) or "") for k in keys)


def unservable_reason(model: type[models.Model]) -> str | None:
    """Why trigger functions cannot capture `model`'s writes, or None when they can."""
    meta = model._meta
    if meta.app_label in INTERNAL_APPS:
        return "Eventing's own tables and Django's bookkeeping are never captured."
    if meta.proxy:
        return (
            f"{meta.label} is a proxy model: a trigger function sees every write to "
            f"{meta.db_table}, not only the proxy's. Name the concrete model "
            f"({meta.concrete_model._meta.label})."
        )
    if meta.parents:
        return (
            f"{meta.label} inherits fields stored in another table (multi-table inheritance); "
            "database capture sees one table at a time."
        )
    if meta.pk.column is None:
        return f"{meta.label} has a composite primary key, which database capture cannot pair."
    alias = router.db_for_write(model)
    if not same_database(alias, settings.DATABASE):
        return (
            f"{meta.label} is stored in database {alias!r}, not in the events database "
            f"{settings.DATABASE!r} (EVENTING['DATABASE']): a trigger function can only write "
            "event rows into its own database."
        )
    return None


# served_by_database() answers per model, asked twice on every save: kept until the settings
# object changes (get_settings() is rebuilt whenever EVENTING changes) or routing does.
_served: dict = {"settings": None, "models": {}}


def served_by_database(model: type[models.Model]) -> bool:
    """Whether `model`'s DB events come from trigger functions (so the signals skip it)."""
    current = get_settings()
    if _served["settings"] is not current:
        _served["settings"], _served["models"] = current, {}
    known = _served["models"]
    if model not in known:
        known[model] = database_capture() and unservable_reason(model) is None
    return known[model]


@receiver(setting_changed)
def _forget_served(*, setting: str, **kwargs) -> None:
    """Routing or databases changed (tests): ask again."""
    if setting in ("DATABASES", "DATABASE_ROUTERS"):
        _served["settings"] = None


def check_source(trigger: Trigger, model: type[models.Model]) -> None:
    """Trigger validation in database mode: refuse a model trigger functions cannot serve."""
    if not database_capture():
        return
    reason = unservable_reason(model)
    table = model._meta.db_table
    if reason is None and table_schema(connections[settings.DATABASE], table) is None:
        reason = (
            f"Table {model._meta.db_table} does not exist in the events database yet "
            "(run migrate first)."
        )
    if reason:
        raise ValidationError({"source": f"Database capture cannot serve this model: {reason}"})


# --- SQL text -------------------------------------------------------------------------------


def literal(text: str) -> str:
    """A SQL string literal read the same whatever standard_conforming_strings says."""
    return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def jsonb_literal(value: Any) -> str:
    """A jsonb constant."""
    return f"{literal(json.dumps(value, sort_keys=True))}::jsonb"


def text_array(names: Iterable[str]) -> str:
    """A text[] constant."""
    return "ARRAY[" + ", ".join(literal(n) for n in names) + "]::text[]"


# --- values as model_data.json_safe renders them ---------------------------------------------


def storage_field(model_field: models.Field) -> models.Field:
    """The field whose type a column has (a foreign key's column has its target's)."""
    while model_field.is_relation and getattr(model_field, "target_field", None) is not None:
        model_field = model_field.target_field
    return model_field


def float_json(x: str) -> str:
    """A float as json_safe writes it: 1.0 stays 1.0, infinities and NaN become "inf"/"nan"."""
    return (
        f"CASE jsonb_typeof({x}) "
        f"WHEN 'string' THEN to_jsonb(CASE {x} #>> '{{}}' WHEN 'Infinity' THEN 'inf' "
        f"WHEN '-Infinity' THEN '-inf' ELSE 'nan' END) "
        f"WHEN 'number' THEN CASE WHEN ({x})::numeric = trunc(({x})::numeric) "
        f"AND abs(({x})::numeric) < {FLOAT_REPR_EXPONENT_AT} "
        f"THEN (({x})::text || '.0')::jsonb ELSE {x} END "
        f"ELSE {x} END"
    )


def value_sql(model_field: models.Field, row: str) -> str:
    """SQL for one field of `row` (a captured row as jsonb) as JSON-safe jsonb.

    Mirrors `model_data.json_safe`: big integers and decimals as strings, datetimes as
    isoformat writes them (UTC, "+00:00"), durations as seconds, bytes as base64, files as their
    name (empty: null). Other types keep to_jsonb's rendering (see docs/guarantees.md).
    """
    x = f"({row} -> {literal(model_field.column)})"
    text = f"({x} #>> '{{}}')"
    kind = storage_field(model_field)
    if isinstance(kind, models.BigIntegerField):
        return (
            f"CASE WHEN jsonb_typeof({x}) = 'number' AND abs(({x})::numeric) > {MAX_SAFE_INT} "
            f"THEN to_jsonb({text}) ELSE {x} END"
        )
    if isinstance(kind, models.FloatField):
        return float_json(x)
    if isinstance(kind, models.DecimalField):
        return f"to_jsonb({text})"
    if isinstance(kind, models.DateTimeField):
        if django_settings.USE_TZ:
            moment = f"({text}::timestamptz AT TIME ZONE 'UTC')"
            return f"to_jsonb(({iso_text(moment)}) || '+00:00')"
        moment = f"({text}::timestamptz AT TIME ZONE {literal(django_settings.TIME_ZONE)})"
        return f"to_jsonb({iso_text(moment)})"
    if isinstance(kind, models.TimeField):
        moment = f"('2000-01-01'::date + {text}::time)"
        return f"to_jsonb(substr({iso_text(moment)}, 12))"
    if isinstance(kind, models.DurationField):
        return float_json(f"to_jsonb(extract(epoch FROM {text}::interval)::float8)")
    if isinstance(kind, models.BinaryField):
        return f"to_jsonb(translate(encode({text}::bytea, 'base64'), E'\\n', ''))"
    if isinstance(model_field, models.FileField):
        return f"to_jsonb(NULLIF({text}, ''))"
    return x


def iso_text(moment: str) -> str:
    """A timestamp as isoformat writes it (microseconds only when there are some), one to_char."""
    return (
        f"CASE WHEN date_trunc('second', {moment}) = {moment} "
        f"THEN to_char({moment}, 'YYYY-MM-DD\"T\"HH24:MI:SS') "
        f"ELSE to_char({moment}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US') END"
    )


def float_column(value: str) -> str:
    """A float8 as json_safe writes it (see float_json), from a typed value."""
    return (
        f"CASE WHEN {value} = 'Infinity'::float8 THEN '\"inf\"'::jsonb "
        f"WHEN {value} = '-Infinity'::float8 THEN '\"-inf\"'::jsonb "
        f"WHEN {value} = 'NaN'::float8 THEN '\"nan\"'::jsonb "
        f"WHEN {value} = trunc({value}) AND abs({value}) < {FLOAT_REPR_EXPONENT_AT} "
        f"THEN (to_jsonb({value})::text || '.0')::jsonb ELSE to_jsonb({value}) END"
    )


def column_sql(model_field: models.Field, column: str) -> str:
    """SQL for one field read from its typed column, as JSON-safe jsonb (as value_sql, faster)."""
    kind = storage_field(model_field)
    if isinstance(kind, models.BigIntegerField):
        return (
            f"CASE WHEN {column} BETWEEN -{MAX_SAFE_INT} AND {MAX_SAFE_INT} "
            f"THEN to_jsonb({column}) ELSE to_jsonb({column}::text) END"
        )
    if isinstance(kind, models.FloatField):
        return float_column(column)
    if isinstance(kind, models.DecimalField):
        return f"to_jsonb({column}::text)"
    if isinstance(kind, models.DateTimeField):
        if django_settings.USE_TZ:
            moment = f"({column} AT TIME ZONE 'UTC')"
            return f"to_jsonb(({iso_text(moment)}) || '+00:00')"
        moment = f"({column} AT TIME ZONE {literal(django_settings.TIME_ZONE)})"
        return f"to_jsonb({iso_text(moment)})"
    if isinstance(kind, models.TimeField):
        moment = f"('2000-01-01'::date + {column})"
        return f"to_jsonb(substr({iso_text(moment)}, 12))"
    if isinstance(kind, models.DurationField):
        return float_column(f"extract(epoch FROM {column})::float8")
    if isinstance(kind, models.BinaryField):
        return f"to_jsonb(translate(encode({column}, 'base64'), E'\\n', ''))"
    if isinstance(model_field, models.FileField):
        return f"to_jsonb(NULLIF({column}, ''))"
    if isinstance(kind, models.JSONField):
        return column
    return f"to_jsonb({column})"


# Built-in fields whose column type has an equality operator (IS DISTINCT FROM needs one);
# other fields are compared through to_jsonb.
COMPARABLE = (
    models.IntegerField,
    models.FloatField,
    models.DecimalField,
    models.CharField,
    models.TextField,
    models.BooleanField,
    models.DateField,
    models.TimeField,
    models.DurationField,
    models.UUIDField,
    models.JSONField,
    models.BinaryField,
    models.GenericIPAddressField,
    models.FileField,
)


def minus(expression: str, names: Iterable[str]) -> str:
    """`expression` without the keys (or array elements) in `names`."""
    names = sorted(names)
    return f"({expression} - {text_array(names)})" if names else expression


# --- filters in SQL (triggers.matching semantics) -------------------------------------------


def lookup_sql(base: str, path: list[str]) -> str:
    """`base #> path`, NULL where Python's lookup finds nothing (it only walks objects)."""
    if not path:
        return base
    guards = []
    for index, part in enumerate(path):
        # #> indexes arrays by number; Python's lookup never does.
        if part.lstrip("-").isdigit():
            guards.append(f"jsonb_typeof({base} #> {text_array(path[:index])}) = 'object'")
    found = f"({base} #> {text_array(path)})"
    return f"CASE WHEN {' AND '.join(guards)} THEN {found} END" if guards else found


def equals_sql(x: str, value: Any) -> str:
    """`x == value` as Python compares JSON values (True == 1, 1 == 1.0)."""
    if value is None:
        return f"({x} = 'null'::jsonb)"
    if isinstance(value, (bool, int, float)):
        number = repr(float(value)) if isinstance(value, float) else str(int(value))
        tests = [f"(jsonb_typeof({x}) = 'number' AND ({x})::numeric = {literal(number)}::numeric)"]
        if value == 1:
            tests.append(f"({x} = 'true'::jsonb)")
        elif value == 0:
            tests.append(f"({x} = 'false'::jsonb)")
        return "(" + " OR ".join(tests) + ")"
    return f"({x} = {jsonb_literal(value)})"


def member_sql(x: str, operand: Any) -> str:
    """`x in operand` (a list: membership; a string: substring; an object: key)."""
    if isinstance(operand, list):
        if not operand:
            return "FALSE"
        return "(" + " OR ".join(equals_sql(x, item) for item in operand) + ")"
    if isinstance(operand, str):
        return f"(jsonb_typeof({x}) = 'string' AND strpos({literal(operand)}, {x} #>> '{{}}') > 0)"
    if isinstance(operand, dict):
        keys = text_array(operand) if operand else "ARRAY[]::text[]"
        return f"(jsonb_typeof({x}) = 'string' AND ({x} #>> '{{}}') = ANY({keys}))"
    return "FALSE"


def clause_sql(x: str, expected: Any) -> str:
    """One filter entry (`triggers.matching._matches_one`) as a boolean that is never NULL."""
    present = f"({x} IS NOT NULL)"
    if isinstance(expected, list):
        test = f"({present} AND {member_sql(x, expected)})"
    elif isinstance(expected, dict):
        tests = []
        for op, operand in expected.items():
            if op == "in":
                tests.append(f"({present} AND {member_sql(x, operand)})")
            elif op == "not_in":
                tests.append(f"(NOT {present} OR NOT {member_sql(x, operand)})")
            elif op == "eq":
                tests.append(f"({present} AND {equals_sql(x, operand)})")
            elif op == "ne":
                tests.append(f"(NOT {present} OR NOT {equals_sql(x, operand)})")
            elif op == "exists":
                tests.append(present if operand else f"(NOT {present})")
        test = "(" + " AND ".join(tests or ["TRUE"]) + ")"
    else:
        test = f"({present} AND {equals_sql(x, expected)})"
    return f"COALESCE({test}, FALSE)"


# --- one function per (table, kind) ----------------------------------------------------------


@dataclass(frozen=True)
class TriggerConfig:
    """What a generated function bakes in of one trigger."""

    id: int
    name: str
    filter: dict
    watch_fields: tuple[str, ...]
    payload_fields: tuple[str, ...]


@dataclass
class Plan:
    """The two functions and the trigger one table needs for one event type.

    `function` is the trigger function: it stores the statement's rows in event_captures.
    `expander` turns such a capture into event rows; the listener (or the sweeper) calls it.
    """

    schema: str
    table: str
    event_type: str
    model_label: str
    triggers: list[str]
    function: str
    definition: str
    expander: str
    expander_definition: str
    digest: str
    robust: bool = False

    @property
    def kind(self) -> str:
        return KINDS[self.event_type]

    @property
    def trigger_name(self) -> str:
        return PREFIX + self.kind

    @property
    def functions(self) -> tuple[str, str]:
        return (self.function, self.expander)

    def comment(self) -> str:
        """What COMMENT ON FUNCTION stores: enough for `status` to explain the function."""
        return json.dumps(
            {
                "eventing_capture": 1,
                "table": self.table,
                "type": self.event_type,
                "model": self.model_label,
                "triggers": self.triggers,
                "hash": self.digest,
                "robust": self.robust,
            },
            sort_keys=True,
        )


def function_name(table: str, kind: str) -> str:
    """eventing_capture_<kind>_<table>, kept within PostgreSQL's 63 characters."""
    name = f"{PREFIX}{kind}_{table}"
    if len(name) <= 63:
        return name
    return f"{name[:54]}_{hashlib.sha256(table.encode()).hexdigest()[:8]}"


def expander_name(table: str, kind: str) -> str:
    """eventing_capture_expand_<kind>_<table>: the function that turns captures into events."""
    return function_name(table, f"{EXPAND}{kind}")


def payload_sql(
    event_type: str,
    model: type[models.Model],
    alias: str,
    trigger: TriggerConfig,
    hidden: frozenset[str],
    names: list[str],
) -> str:
    """The `data` of one trigger's event, from the row set `r`."""
    if trigger.payload_fields:
        dropped = [n for n in names if n not in trigger.payload_fields]
    else:
        dropped = sorted(hidden)
    old = minus("r.old_full", dropped) if event_type != types.DB_INSERT else "NULL::jsonb"
    new = minus("r.new_full", dropped) if event_type != types.DB_DELETE else "NULL::jsonb"
    meta = model._meta
    pairs = [
        f"'db', {literal(alias)}",
        f"'model', {literal(meta.label)}",
        f"'table', {literal(meta.db_table)}",
        "'pk', r.pk",
        f"'old', {old}",
        f"'new', {new}",
    ]
    if event_type == types.DB_UPDATE:
        pairs.append(f"'changed', {minus('r.changed', hidden)}")
    return "jsonb_build_object(" + ", ".join(pairs) + ")"


def conditions_sql(
    event_type: str,
    model: type[models.Model],
    alias: str,
    trigger: TriggerConfig,
    hidden: frozenset[str],
) -> str:
    """The WHERE of one trigger's arm: its watch list, then its filter."""
    conditions = []
    if event_type == types.DB_UPDATE and trigger.watch_fields:
        conditions.append(f"(r.changed ?| {text_array(trigger.watch_fields)})")
    meta = model._meta
    roots = {
        "db": jsonb_literal(alias),
        "model": jsonb_literal(meta.label),
        "table": jsonb_literal(meta.db_table),
        "pk": "r.pk",
        "old": "'null'::jsonb" if event_type == types.DB_INSERT else minus("r.old_full", hidden),
        "new": "'null'::jsonb" if event_type == types.DB_DELETE else minus("r.new_full", hidden),
    }
    if event_type == types.DB_UPDATE:
        roots["changed"] = minus("r.changed", hidden)
    for path, expected in trigger.filter.items():
        head, *rest = path.split(".")
        # A key the data lacks: Python's lookup finds nothing there.
        actual = lookup_sql(roots[head], rest) if head in roots else "NULL::jsonb"
        conditions.append(clause_sql(actual, expected))
    return " AND ".join(conditions) if conditions else "TRUE"


def rows_sql(
    event_type: str,
    model: type[models.Model],
    *,
    column_types: dict[str, str],
    robust: bool = False,
) -> str:
    """The CTE `r`: one row per written row with pk, old_full, new_full (and changed).

    The rows come from the capture `c` (JSON arrays, one object per row, keys the column
    names). The fast form reads them back into typed columns (`json_to_recordset`, with the
    table's column types) and renders each from its type; the robust form (installed while
    migrations run) reads each value from the JSON. Either way a key missing from the capture
    (a column dropped since) reads as null.
    """
    fields = list(model._meta.concrete_fields)
    pk = model._meta.pk
    definition = ", ".join(f"{ident(f.column)} {column_types[f.column]}" for f in fields)

    def read(alias: str) -> str:
        rows = "c.new_rows" if alias == "n" else "c.old_rows"
        if robust:
            return f"(SELECT value::jsonb AS j FROM json_array_elements({rows}::json)) AS {alias}"
        return f"json_to_recordset({rows}::json) AS {alias}({definition})"

    def value(model_field: models.Field, alias: str) -> str:
        if robust:
            return value_sql(model_field, f"{alias}.j")
        return column_sql(model_field, f"{alias}.{ident(model_field.column)}")

    def row(alias: str) -> str:
        parts = []
        for start in range(0, len(fields), FIELDS_PER_OBJECT):
            pairs = ", ".join(
                f"{literal(f.name)}, {value(f, alias)}"
                for f in fields[start : start + FIELDS_PER_OBJECT]
            )
            parts.append(f"jsonb_build_object({pairs})")
        return " || ".join(parts) if parts else "'{}'::jsonb"

    def column(model_field: models.Field, alias: str) -> str:
        if robust:
            return f"({alias}.j -> {literal(model_field.column)})"
        if isinstance(storage_field(model_field), COMPARABLE):
            return f"{alias}.{ident(model_field.column)}"
        return f"to_jsonb({alias}.{ident(model_field.column)})"

    if event_type == types.DB_INSERT:
        return (
            f"SELECT {value(pk, 'n')} AS pk, NULL::jsonb AS old_full, {row('n')} AS new_full "
            f"FROM {read('n')}"
        )
    if event_type == types.DB_DELETE:
        return (
            f"SELECT {value(pk, 'o')} AS pk, {row('o')} AS old_full, NULL::jsonb AS new_full "
            f"FROM {read('o')}"
        )
    changed = ", ".join(
        f"CASE WHEN {column(f, 'o')} IS DISTINCT FROM {column(f, 'n')} THEN {literal(f.name)} END"
        for f in fields
    )
    return (
        f"SELECT {value(pk, 'n')} AS pk, {row('o')} AS old_full, {row('n')} AS new_full, "
        f"to_jsonb(array_remove(ARRAY[{changed}]::text[], NULL)) AS changed "
        f"FROM {read('o')} JOIN {read('n')} ON {column(pk, 'o')} = {column(pk, 'n')}"
    )


def capture_body(
    event_type: str,
    model: type[models.Model],
    triggers: list[TriggerConfig],
    *,
    schema: str,
    expander: str,
    captures_table: str,
) -> str:
    """The trigger function's body: store the statement's rows as one capture, then notify.

    No per-row work but turning rows into JSON (json_agg, one pass), and no lookup: which
    triggers are enabled, their filters and payloads, and the event rows are the expander's,
    after commit.
    """
    kind = KINDS[event_type]
    column = {f.attname: ident(f.column) for f in EventCapture._meta.concrete_fields}
    old = "(SELECT json_agg(o)::text FROM old_rows AS o)" if kind != "insert" else "NULL"
    new = "(SELECT json_agg(n)::text FROM new_rows AS n)" if kind != "delete" else "NULL"
    written = "old_rows" if kind == "delete" else "new_rows"
    values = {
        "schema": literal(schema),
        "table": literal(model._meta.db_table),
        "kind": literal(kind),
        "expander": literal(expander),
        "trigger_ids": jsonb_literal(sorted(t.id for t in triggers)),
        "created_at": "clock_timestamp()",
        # Only the writing session has it (eventing.capture.actor sets it before each write).
        "actor": f"nullif(current_setting({literal(ACTOR_SETTING)}, true), '')",
        "old_rows": old,
        "new_rows": new,
    }
    unknown = sorted(set(column) - set(values) - {"id"})
    if unknown:
        raise ImproperlyConfigured(
            f"event_captures has columns database capture does not fill: {', '.join(unknown)}"
        )
    return f"""
BEGIN
  IF NOT EXISTS (SELECT FROM {written}) THEN
    RETURN NULL;
  END IF;
  INSERT INTO {captures_table} ({", ".join(column[name] for name in values)})
  VALUES ({", ".join(values.values())});
  PERFORM pg_notify({literal(CHANNEL)}, '');
  RETURN NULL;
END
"""


def expander_body(
    event_type: str,
    model: type[models.Model],
    alias: str,
    triggers: list[TriggerConfig],
    *,
    column_types: dict[str, str],
    events_table: str,
    triggers_table: str,
    robust: bool = False,
) -> str:
    """The expander's body: one INSERT … SELECT of every (row, trigger) event of capture `c`.

    Returns the batch id of the rows written (NULL when no trigger wanted any).
    """
    hidden_base = sensitive_fields(model)
    names = [f.name for f in model._meta.concrete_fields]
    arms = []
    for trigger in triggers:
        hidden = hidden_base.difference(trigger.payload_fields)
        arms.append(
            f"    SELECT {trigger.id}::bigint AS trigger_id, "
            f"{payload_sql(event_type, model, alias, trigger, hidden, names)} AS payload\n"
            f"    FROM r WHERE c.trigger_ids @> '{trigger.id}'::jsonb "
            f"AND {conditions_sql(event_type, model, alias, trigger, hidden)}"
        )
    column = {f.attname: ident(f.column) for f in EventLog._meta.concrete_fields}
    trigger = {f.attname: ident(f.column) for f in Trigger._meta.concrete_fields}
    # While migrations run the column may not exist yet: read it by name from the row's JSON.
    send_actor = (
        f"COALESCE((to_jsonb(t) -> {literal('send_actor')})::boolean, true)"
        if robust
        else f"t.{trigger['send_actor']}"
    )
    values = {
        "id": "gen_random_uuid()",
        "batch_id": "batch_",
        "type": literal(event_type),
        "trigger_id": f"t.{trigger['id']}",
        "trigger_name": f"t.{trigger['name']}",
        "source": literal(model._meta.label),
        "payload": "e.payload || a.actor",
        "status": literal(EventStatus.STAGED),
        "attempts": "0",
        "deliver_at": f"c.created_at + t.{trigger['delay_s']} * interval '1 second'",
        # NULL: the listener publishes the row (the sweeper if the listener is away).
        "enqueued_at": "NULL",
        "locked_until": "NULL",
        "created_at": "c.created_at",
        "processed_at": "NULL",
        "last_status_code": "NULL",
        "remark": "''",
        "idempotency_key": "NULL",
        # As triggers.matching.ordering_value: the text at the trigger's path, long ones hashed.
        "ordering_key": f"CASE WHEN length(k.v) > {MAX_KEY_CHARS} THEN '#' || md5(k.v) "
        "ELSE k.v END",
    }
    unknown = sorted(set(column) - set(values))
    if unknown:
        raise ImproperlyConfigured(
            f"event_logs has columns database capture does not fill: {', '.join(unknown)}"
        )
    union = "\n    UNION ALL\n".join(arms)
    rows = rows_sql(event_type, model, column_types=column_types, robust=robust)
    return f"""
DECLARE
  batch_ uuid := gen_random_uuid();
  written_ bigint;
  actor_ text := c.actor;
BEGIN
  WITH r AS ({rows})
  INSERT INTO {events_table} ({", ".join(column[name] for name in values)})
  SELECT {", ".join(values.values())}
  FROM (
{union}
  ) AS e
  JOIN {triggers_table} AS t ON t.{trigger["id"]} = e.trigger_id AND t.{trigger["enabled"]}
  -- Who made the change (the writer stored it), unless the trigger leaves it out. Only the
  -- actor's object is a lateral: a lateral holding the whole payload (a CASE over e.payload)
  -- made expansion 5x slower (20,000 rows: 6.8 s against 1.2 s).
  CROSS JOIN LATERAL (
    SELECT CASE WHEN actor_ IS NOT NULL AND {send_actor}
      THEN jsonb_build_object('actor', actor_) ELSE '{{}}'::jsonb END AS actor
  ) AS a
  -- The key is read from the payload as sent (actor included), as signal mode reads it.
  CROSS JOIN LATERAL (
    SELECT CASE WHEN t.{trigger["ordering_key"]} = '' THEN NULL
      ELSE (e.payload || a.actor) #>> string_to_array(t.{trigger["ordering_key"]}, '.') END AS v
  ) AS k;
  GET DIAGNOSTICS written_ = ROW_COUNT;
  RETURN CASE WHEN written_ > 0 THEN batch_ END;
END
"""


def dollar_quoted(body: str) -> str:
    """`body` between dollar quotes whose tag does not occur in it."""
    tag, n = "$eventing$", 0
    while tag in body:
        n += 1
        tag = f"$eventing{n}$"
    return f"{tag}{body}{tag}"


def plan_for(
    event_type: str,
    model: type[models.Model],
    triggers: list[TriggerConfig],
    *,
    schema: str,
    column_types: dict[str, str],
    events_table: str,
    captures_table: str,
    triggers_table: str,
    robust: bool = False,
) -> Plan:
    """The functions one table needs for one event type, with their digest."""
    table = model._meta.db_table
    alias = router.db_for_write(model)
    kind = KINDS[event_type]
    name, expander = function_name(table, kind), expander_name(table, kind)
    body = capture_body(
        event_type,
        model,
        triggers,
        schema=schema,
        expander=expander,
        captures_table=captures_table,
    )
    definition = (
        f"CREATE OR REPLACE FUNCTION {ident(schema)}.{ident(name)}() RETURNS trigger "
        f"LANGUAGE plpgsql AS {dollar_quoted(body)}"
    )
    body = expander_body(
        event_type,
        model,
        alias,
        triggers,
        column_types=column_types,
        events_table=events_table,
        triggers_table=triggers_table,
        robust=robust,
    )
    expander_definition = (
        f"CREATE OR REPLACE FUNCTION {ident(schema)}.{ident(expander)}(c {captures_table}) "
        f"RETURNS uuid LANGUAGE plpgsql AS {dollar_quoted(body)}"
    )
    digest = hashlib.sha256((definition + expander_definition).encode()).hexdigest()[:16]
    return Plan(
        schema=schema,
        table=table,
        event_type=event_type,
        model_label=model._meta.label,
        triggers=[t.name for t in triggers],
        function=name,
        definition=definition,
        expander=expander,
        expander_definition=expander_definition,
        digest=digest,
        robust=robust,
    )


# --- what the triggers ask for, what the catalog holds ----------------------------------------


@dataclass
class Wanted:
    """Every function the current triggers need, and the triggers that cannot be served."""

    plans: dict[tuple[str, str, str], Plan] = field(default_factory=dict)
    # (trigger name, model label, reason)
    unserved: list[tuple[str, str, str]] = field(default_factory=list)


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
        plan = plan_for(
            event_type,
            model,
            configs,
            schema=schema,
            column_types=column_types,
            events_table=events_table,
            captures_table=captures_table,
            triggers_table=triggers_table,
            robust=robust,
        )
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
    """The table's columns and their SQL types (format_type), as the catalog has them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
            [f"{ident(schema)}.{ident(table)}"],
        )
        return dict(cursor.fetchall())


def missing_columns(connection, plan: Plan, model: type[models.Model]) -> list[str]:
    """Columns the model has that the table lacks (a migration not applied, or out-of-band DDL)."""
    present = table_columns(connection, plan.schema, plan.table)
    return [f.column for f in model._meta.concrete_fields if f.column not in present]


# --- status, sync, drop ----------------------------------------------------------------------


OK, MISSING, STALE, DISABLED, ORPHAN, UNSERVED = (
    "ok",
    "missing",
    "stale",
    "disabled",
    "orphan",
    "unserved",
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
    return lines


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


def sync(using: str | None = None, *, robust: bool = False) -> list[str]:
    """Install, replace or drop functions and triggers until they match the triggers.

    Runs in one transaction (a savepoint inside the caller's): a Trigger saved in a
    transaction has its function in the same one. Captures already written are expanded first,
    by the functions that wrote them. In signal mode everything is dropped. `robust` installs
    the expanders that read each value from the captured JSON (while migrations run).
    Returns what was done, one line each (a trigger function stands for its expander).
    """
    db = using or settings.DATABASE
    connection = connections[db]
    if connection.vendor != "postgresql":
        return []
    actions = []
    with transaction.atomic(using=db), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SYNC_LOCK_KEY])
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
        for key, current in catalog.attached.items():
            if key not in wanted.plans:
                target = f"{ident(current.schema)}.{ident(current.table)}"
                cursor.execute(f"DROP TRIGGER IF EXISTS {ident(current.trigger)} ON {target}")
                actions.append(f"dropped trigger {current.trigger} on {current.table}")
        needed = {(p.schema, name) for p in wanted.plans.values() for name in p.functions}
        actions += drop_functions(cursor, catalog, keep=needed)
    return actions


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
    db = using or settings.DATABASE
    connection = connections[db]
    if connection.vendor != "postgresql":
        return []
    actions = []
    with transaction.atomic(using=db), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SYNC_LOCK_KEY])
        expand_all(db)
        catalog = read_catalog(connection)
        for current in catalog.attached.values():
            target = f"{ident(current.schema)}.{ident(current.table)}"
            cursor.execute(f"DROP TRIGGER IF EXISTS {ident(current.trigger)} ON {target}")
            actions.append(f"dropped trigger {current.trigger} on {current.table}")
        actions += drop_functions(cursor, catalog, keep=set())
    return actions


# --- captures into events ---------------------------------------------------------------------


@dataclass
class Expanded:
    """What one expansion pass did."""

    captures: int = 0
    batch_ids: list[str] = field(default_factory=list)
    # (id, deliver_at, trigger_id) of the rows marked sent, to publish after commit.
    sent: list[tuple] = field(default_factory=list)


def expand_captures(
    using: str | None = None,
    *,
    limit: int = CAPTURES_PER_PASS,
    sent_at: dt.datetime | None = None,
    sent_until: dt.datetime | None = None,
) -> Expanded:
    """Turn up to `limit` captures into event rows and delete them, in one transaction.

    Captures are locked with SKIP LOCKED, so the listener, sweepers and syncs running at once
    each take different ones; event rows and the deletion commit together, so a capture is
    expanded exactly once even if the process dies at any point. A capture whose expander
    fails (its table altered since; run `eventing_capture sync`) or is gone is kept. Given
    `sent_at`, the new rows due by `sent_until` whose trigger may deliver are marked sent in
    the same statement (the listener publishes them after commit).
    """
    db = using or settings.DATABASE
    connection = connections[db]
    done = Expanded()
    if connection.vendor != "postgresql":
        return done
    with transaction.atomic(using=db, savepoint=False), connection.cursor() as cursor:
        # One statement (see the migration that creates event_captures): the listener pays one
        # round trip per pass, however many tables its captures come from.
        cursor.execute(
            "SELECT expanded, batch_ids, failures, sent_ids, sent_due, sent_triggers "
            "FROM event_captures_expand(%s, %s, %s)",
            [limit, sent_at, sent_until],
        )
        done.captures, batch_ids, failures, ids, due, trigger_ids = cursor.fetchone()
    done.batch_ids = [str(batch) for batch in batch_ids]
    done.sent = list(zip(ids or (), due or (), trigger_ids or (), strict=True))
    for failure in failures:
        logger.error("Captures not expanded (kept; run `eventing_capture sync`): %s", failure)
    return done


def expand_all(using: str | None = None) -> Expanded:
    """Expand captures until none is left that this transaction can take."""
    total = Expanded()
    while True:
        done = expand_captures(using)
        total.captures += done.captures
        total.batch_ids += done.batch_ids
        if done.captures < CAPTURES_PER_PASS:
            return total


def pending_captures(using: str | None = None) -> tuple[int, float | None]:
    """Captures not expanded yet, and the age in seconds of the oldest (None if none)."""
    db = using or settings.DATABASE
    if connections[db].vendor != "postgresql":
        return 0, None
    with connections[db].cursor() as cursor:
        cursor.execute(
            "SELECT count(*), extract(epoch FROM clock_timestamp() - min(created_at)) "
            f"FROM {ident(EventCapture._meta.db_table)}"
        )
        count, age = cursor.fetchone()
    return count, None if age is None else float(age)


# --- keeping functions in step ----------------------------------------------------------------


def expand_before_trigger_change(sender, instance: Trigger, **kwargs) -> None:
    """A Trigger is about to be saved or deleted: expand what was captured under it as it is."""
    if database_capture():
        expand_all(settings.DATABASE)


def sync_after_trigger_change(
    sender, instance: Trigger, using: str | None = None, **kwargs
) -> None:
    """A Trigger was saved or deleted: bring the functions in step, in the same transaction."""
    if database_capture():
        sync(using or settings.DATABASE)


def sync_before_migrate(sender, using: str | None = None, **kwargs) -> None:
    """Before migrations run: expanders that read each value from the captured JSON, so a
    column the migrations drop, rename or retype cannot fail an expansion meanwhile."""
    sync_for_migrate(using, robust=True)


def sync_after_migrate(sender, using: str | None = None, **kwargs) -> None:
    """After migrate (a table renamed, a column dropped): the fast functions of the new models."""
    sync_for_migrate(using, robust=False)


def sync_for_migrate(using: str | None, *, robust: bool) -> None:
    """Sync around migrate, in database mode only: a migrate run by a process left in signal
    mode must not drop the functions the other processes rely on (W006 reports leftovers)."""
    db = using or settings.DATABASE
    if not database_capture() or not same_database(db, settings.DATABASE):
        return
    try:
        for line in sync(settings.DATABASE, robust=robust):
            logger.info("eventing capture: %s", line)
    except DatabaseError as exc:  # before the first migrate: no trigger table yet
        logger.warning("eventing capture not synced around migrate: %s", exc)


def capture_connect(app_config: AppConfig) -> None:
    """Connect the receivers that keep trigger functions in step; called from ready()."""
    pre_save.connect(
        expand_before_trigger_change, sender=Trigger, dispatch_uid="eventing.capture.expand_saving"
    )
    pre_delete.connect(
        expand_before_trigger_change,
        sender=Trigger,
        dispatch_uid="eventing.capture.expand_deleting",
    )
    post_save.connect(
        sync_after_trigger_change, sender=Trigger, dispatch_uid="eventing.capture.sync_saved"
    )
    post_delete.connect(
        sync_after_trigger_change, sender=Trigger, dispatch_uid="eventing.capture.sync_deleted"
    )
    pre_migrate.connect(
        sync_before_migrate, sender=app_config, dispatch_uid="eventing.capture.sync_migrating"
    )
    post_migrate.connect(
        sync_after_migrate, sender=app_config, dispatch_uid="eventing.capture.sync_migrated"
    )
    if check_source not in DB_SOURCE_CHECKS:
        DB_SOURCE_CHECKS.append(check_source)
