"""The trigger function: what a writing statement pays, and the trust boundary it runs behind.

It runs as its owner (`SECURITY DEFINER`: the application's role, the one that runs `sync`), so
a role that writes a captured table needs no privilege on eventing's tables, and with a pinned
`search_path` (`pg_catalog, pg_temp`: PostgreSQL never looks up functions or operators in
pg_temp) no function or operator another role creates can stand in for a built-in one; eventing's
tables are named by schema.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.db import models

from eventing.capture.actor import SETTING as ACTOR_SETTING
from eventing.capture.database.conditions import TriggerConfig
from eventing.capture.database.mode import CHANNEL, KINDS, SIGNALS
from eventing.capture.database.render import storage_field
from eventing.capture.database.sql import Place, ident, jsonb_literal, literal
from eventing.capture.model_data import sensitive_fields
from eventing.models import EventCapture
from triggers import types

# The session setting of eventing.capture.database.switch: "signals" makes the functions stand
# down (that process records its writes itself).
SESSION_MODE = "eventing.capture"
# The session setting a trigger function marks with its table and kind once it captured a
# statement of the session, so a save learns after the fact whether its write was captured
# (eventing.capture.database.switch): it only ever grows, as a function once attached stays.
SESSION_MARKS = "eventing.captured"
# What every generated function (and event_captures_expand) is pinned to.
PINNED_SEARCH_PATH = "SET search_path = pg_catalog, pg_temp"
# The trigger function's own settings: see split_sql.
TRIGGER_FUNCTION_SETTINGS = f"SECURITY DEFINER {PINNED_SEARCH_PATH} SET enable_hashagg = off"
# A capture row holds about this many bytes of JSON (old and new rows together) at most: a
# statement's further rows go to further captures. So no value nears PostgreSQL's 1 GB limit
# whatever the statement, and neither the writer nor the expander holds more than this at once.
BYTES_PER_CAPTURE = 16 * 1024 * 1024


def session_mark(table: str, kind: str) -> str:
    """What a trigger function adds to SESSION_MARKS once it captured a statement."""
    return f"<{kind}:{table}>"


def needed_columns(
    event_type: str, model: type[models.Model], triggers: list[TriggerConfig]
) -> list[str] | None:
    """The columns the table's triggers read from a written row; None when they read all.

    An update's event lists every changed field (`changed`), so updates keep every column;
    an insert or delete keeps the primary key, the payload fields (all but the sensitive ones
    for a trigger that names none) and the fields its filters read.
    """
    if event_type == types.DB_UPDATE:
        return None
    fields = model._meta.concrete_fields
    hidden = sensitive_fields(model)
    names = {model._meta.pk.name}
    for trigger in triggers:
        if trigger.payload_fields:
            names.update(trigger.payload_fields)
        else:
            names.update(f.name for f in fields if f.name not in hidden)
        for path in trigger.filter:
            head, _, rest = path.partition(".")
            if head in ("old", "new") and rest:
                names.add(rest.partition(".")[0])
    columns = [f.column for f in fields if f.name in names or f.attname in names]
    return None if len(columns) == len(fields) else columns


def rows_of(transition: str, columns: list[str] | None) -> str:
    """The transition table, narrowed to `columns` (aliased `x`, for row_to_json)."""
    if columns is None:
        return f"{transition} AS x"
    picked = ", ".join(f"t.{ident(c)}" for c in columns)
    return f"(SELECT {picked} FROM {transition} AS t) AS x"


def split_sql(kind: str, columns: list[str] | None, pk: str) -> str:
    """One row per capture: (old JSON array, new JSON array), at most BYTES_PER_CAPTURE each pair.

    Each written row becomes JSON text once; a running sum of their sizes (in the order the
    rows come, no sort) gives each row its part, and a part's rows are joined into one array.
    The function groups by sorting (`enable_hashagg` is off for it: a hash table would hold
    every part's text at once), and a sort spills to disk beyond work_mem, so one part's text
    is the most held in memory. An update's old and new rows are paired by primary key, as the
    expander pairs them, so a pair never straddles two captures. Order within an array does
    not matter: the expander pairs by key, and a statement's events share one instant.
    """
    running = "OVER (ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    if kind == "update":
        rows = (
            "SELECT pg_catalog.row_to_json(o)::text AS oj, pg_catalog.row_to_json(n)::text AS nj "
            f"FROM old_rows AS o JOIN new_rows AS n ON n.{pk} = o.{pk}"
        )
        size = "(pg_catalog.octet_length(w.oj) + pg_catalog.octet_length(w.nj))"
        arrays = (
            "'[' || pg_catalog.string_agg(s.oj, ',') || ']', "
            "'[' || pg_catalog.string_agg(s.nj, ',') || ']'"
        )
        carried = "w.oj, w.nj"
    else:
        transition = "old_rows" if kind == "delete" else "new_rows"
        rows = f"SELECT pg_catalog.row_to_json(x)::text AS j FROM {rows_of(transition, columns)}"
        size = "pg_catalog.octet_length(w.j)"
        array = "'[' || pg_catalog.string_agg(s.j, ',') || ']'"
        arrays = f"{array}, NULL" if kind == "delete" else f"NULL, {array}"
        carried = "w.j"
    return (
        f"SELECT {arrays} FROM (SELECT {carried}, "
        f"(pg_catalog.sum({size}) {running} - {size}) / {BYTES_PER_CAPTURE} AS part "
        f"FROM ({rows}) AS w) AS s GROUP BY s.part"
    )


# Fields whose JSON has a size bounded by their type (a number, a date, a uuid, a boolean).
BOUNDED = (
    models.IntegerField,
    models.BooleanField,
    models.FloatField,
    models.DecimalField,
    models.DateField,
    models.TimeField,
    models.DurationField,
    models.UUIDField,
)
TEXT_LIKE = (models.CharField, models.TextField, models.FileField)
# A bounded value, its key and punctuation as JSON: at most this many bytes.
BOUNDED_JSON_BYTES = 48
# JSON escapes a character in at most 6 bytes (\u00XX).
ESCAPED_PER_BYTE = 6
# A value of another variable-width type (json, bytea, arrays): its stored size times this.
OTHER_PER_BYTE = 10


def size_bound_sql(model: type[models.Model], columns: list[str] | None, transition: str) -> str:
    """An upper bound of the transition table's rows as JSON, read without building any JSON.

    octet_length of a text reads its size from the TOAST header (no decompression), so a
    statement of a few small rows, the usual one, is known small in microseconds.
    """
    fixed, wide = 2, []
    for f in model._meta.concrete_fields:
        if columns is not None and f.column not in columns:
            continue
        kind = storage_field(f)
        fixed += BOUNDED_JSON_BYTES + len(f.column)
        if isinstance(kind, BOUNDED):
            continue
        per_byte = ESCAPED_PER_BYTE if isinstance(kind, TEXT_LIKE) else OTHER_PER_BYTE
        size = "octet_length" if isinstance(kind, TEXT_LIKE) else "pg_column_size"
        wide.append(f"{per_byte} * coalesce(pg_catalog.{size}(x.{ident(f.column)}), 0)")
    per_row = " + ".join([str(fixed), *wide])
    return f"(SELECT pg_catalog.sum({per_row}) FROM {transition} AS x)"


def single_sql(kind: str, columns: list[str] | None) -> str:
    """The statement's (old, new) JSON arrays as one capture: rows known to be small."""
    old = (
        f"(SELECT pg_catalog.json_agg(x)::text FROM {rows_of('old_rows', columns)})"
        if kind != "insert"
        else "NULL"
    )
    new = (
        f"(SELECT pg_catalog.json_agg(x)::text FROM {rows_of('new_rows', columns)})"
        if kind != "delete"
        else "NULL"
    )
    return f"SELECT {old}, {new}"


def capture_body(
    event_type: str,
    model: type[models.Model],
    triggers: list[TriggerConfig],
    place: Place,
    expander: str,
) -> str:
    """The trigger function's body: store the statement's rows as captures, then notify.

    No per-row work but turning the needed columns of each row into JSON, and no lookup: which
    triggers are enabled, their filters and payloads, and the event rows are the expander's,
    after commit.
    """
    kind = KINDS[event_type]
    column = {f.attname: ident(f.column) for f in EventCapture._meta.concrete_fields}
    written = "old_rows" if kind == "delete" else "new_rows"
    columns = needed_columns(event_type, model, triggers)
    fixed = {
        "schema": literal(place.schema),
        "table": literal(model._meta.db_table),
        # Kept to read; event_captures_expand finds the expander in the catalog, not here.
        "expander": literal(expander),
        "kind": literal(kind),
        "trigger_ids": jsonb_literal(sorted(t.id for t in triggers)),
        "created_at": "pg_catalog.clock_timestamp()",
        # Only the writing session has it (eventing.capture.actor sets it before each write).
        "actor": f"nullif(pg_catalog.current_setting({literal(ACTOR_SETTING)}, true), '')",
    }
    names = [*fixed, "old_rows", "new_rows"]
    unknown = sorted(set(column) - set(names) - {"id"})
    if unknown:
        raise ImproperlyConfigured(
            f"event_captures has columns database capture does not fill: {', '.join(unknown)}"
        )
    into = f"INSERT INTO {place.captures_table} ({', '.join(column[name] for name in names)})"
    constants = ", ".join(fixed.values())
    pk = ident(model._meta.pk.column)
    sides = (
        ["old_rows"]
        if kind == "delete"
        else ["new_rows"]
        if kind == "insert"
        else [
            "old_rows",
            "new_rows",
        ]
    )
    bound = " + ".join(size_bound_sql(model, columns, side) for side in sides)
    mark = literal(session_mark(model._meta.db_table, kind))
    return f"""
DECLARE
  written_ bigint;
  marks_ text;
BEGIN
  -- A process in signal mode records its own writes (eventing.capture.database.switch).
  IF pg_catalog.current_setting({literal(SESSION_MODE)}, true) = {literal(SIGNALS)} THEN
    RETURN NULL;
  END IF;
  SELECT pg_catalog.count(*) INTO written_ FROM (SELECT FROM {written} LIMIT 2) AS w;
  IF written_ = 0 THEN
    RETURN NULL;
  END IF;
  BEGIN
    IF written_ = 1 OR {bound} <= {BYTES_PER_CAPTURE} THEN
      {into}
      SELECT {constants}, r.* FROM ({single_sql(kind, columns)}) AS r;
    ELSE
      {into}
      SELECT {constants}, r.* FROM ({split_sql(kind, columns, pk)}) AS r;
    END IF;
  EXCEPTION WHEN undefined_column THEN
    -- A column dropped or renamed since the last sync (DDL outside migrations, or a migration
    -- running): no write fails; every column, split, naming none but the primary key.
    {into}
    SELECT {constants}, r.* FROM ({split_sql(kind, None, pk)}) AS r;
  END;
  marks_ := COALESCE(pg_catalog.current_setting({literal(SESSION_MARKS)}, true), '');
  IF pg_catalog.strpos(marks_, {mark}) = 0 THEN
    PERFORM pg_catalog.set_config({literal(SESSION_MARKS)}, marks_ || {mark}, false);
  END IF;
  PERFORM pg_catalog.pg_notify({literal(CHANNEL)}, '');
  RETURN NULL;
END
"""
