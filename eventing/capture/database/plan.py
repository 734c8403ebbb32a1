"""The two functions (capture and expander) one table needs for one event kind."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from django.db import models, router

from eventing.capture.database.conditions import TriggerConfig, conditions_sql
from eventing.capture.database.mode import EXPAND, KINDS, PREFIX
from eventing.capture.database.render import COMPARABLE, column_sql, minus, storage_field, value_sql
from eventing.capture.database.sql import Place, ident, literal
from eventing.capture.database.writer import (
    PINNED_SEARCH_PATH,
    TRIGGER_FUNCTION_SETTINGS,
    capture_body,
)
from eventing.capture.model_data import sensitive_fields
from eventing.models import EventLog, EventStatus
from triggers import types
from triggers.matching import MAX_KEY_CHARS
from triggers.models import Trigger

logger = logging.getLogger(__name__)

# jsonb_build_object takes at most 100 arguments: build wide rows in parts of this many fields.
FIELDS_PER_OBJECT = 50

# --- one function per (table, kind) ----------------------------------------------------------


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


def expander_body(
    event_type: str,
    model: type[models.Model],
    alias: str,
    triggers: list[TriggerConfig],
    place: Place,
    *,
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
    rows = rows_sql(event_type, model, column_types=place.column_types, robust=robust)
    return f"""
DECLARE
  batch_ uuid := gen_random_uuid();
  written_ bigint;
  actor_ text := c.actor;
BEGIN
  WITH r AS ({rows})
  INSERT INTO {place.events_table} ({", ".join(column[name] for name in values)})
  SELECT {", ".join(values.values())}
  FROM (
{union}
  ) AS e
  JOIN {place.triggers_table} AS t ON t.{trigger["id"]} = e.trigger_id AND t.{trigger["enabled"]}
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
    place: Place,
    *,
    robust: bool = False,
) -> Plan:
    """The functions one table needs for one event type, with their digest."""
    table = model._meta.db_table
    alias = router.db_for_write(model)
    kind = KINDS[event_type]
    name, expander = function_name(table, kind), expander_name(table, kind)
    body = capture_body(event_type, model, triggers, place, expander)
    definition = (
        f"CREATE OR REPLACE FUNCTION {ident(place.schema)}.{ident(name)}() RETURNS trigger "
        f"LANGUAGE plpgsql {TRIGGER_FUNCTION_SETTINGS} AS {dollar_quoted(body)}"
    )
    body = expander_body(event_type, model, alias, triggers, place, robust=robust)
    expander_definition = (
        f"CREATE OR REPLACE FUNCTION {ident(place.schema)}.{ident(expander)}"
        f"(c {place.captures_table}) "
        f"RETURNS uuid LANGUAGE plpgsql {PINNED_SEARCH_PATH} AS {dollar_quoted(body)}"
    )
    digest = hashlib.sha256((definition + expander_definition).encode()).hexdigest()[:16]
    return Plan(
        schema=place.schema,
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
