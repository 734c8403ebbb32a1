"""event_captures_expand(): the one statement an expansion pass runs, as a versioned definition.

`sync` (and migration 0009) install it when the version in its COMMENT is not this one, so an
existing database upgrades by `migrate` or `eventing_capture sync`. It runs as the listener's
role with a pinned search_path and names eventing's tables by schema. The expander of a capture
is looked up in the catalog from the capture's schema, table and kind, and only a function owned
by the owner of event_captures is run: no function name is read from the row.
"""

from __future__ import annotations

import json

from eventing.capture.database.catalog import qualified, table_schema
from eventing.capture.database.mode import EXPAND, PREFIX
from eventing.capture.database.sql import ident, literal
from eventing.capture.database.writer import BYTES_PER_CAPTURE, PINNED_SEARCH_PATH
from eventing.models import EventCapture, EventLog
from eventing.store.predicates import not_blocked_plpgsql
from triggers.models import Trigger

NAME = "event_captures_expand"
# Raise when the definition below changes: sync replaces an installed function of another one.
VERSION = 4
# One pass expands captures holding at most this many bytes of rows (or a single larger one):
# the expanding backend's memory grows with what one pass expands (docs/benchmarks.md), so a
# statement of a gigabyte is expanded in many passes, each its own transaction.
BYTES_PER_PASS = 2 * BYTES_PER_CAPTURE
ARGUMENTS = "integer, timestamptz, timestamptz"
# What plan.function_name does in Python: long names are cut and end with a hash of the table.
LONGEST_NAME = 63


def expander_name_sql(table: str, kind: str) -> str:
    """plan.expander_name() in SQL: eventing_capture_expand_<kind>_<table>, at most 63 long."""
    name = f"({literal(PREFIX + EXPAND)} || {kind} || '_' || {table})"
    digest = f"left(encode(sha256(convert_to({table}, 'UTF8')), 'hex'), 8)"
    return (
        f"CASE WHEN length({name}) <= {LONGEST_NAME} THEN {name} "
        f"ELSE left({name}, 54) || '_' || {digest} END"
    )


def not_blocked_sql(row: str, events: str) -> str:
    """`row` is not held by an unfinished row of its trigger and ordering key: the store's rule
    (eventing.store.predicates), as literal SQL over `events` named by schema."""
    return not_blocked_plpgsql(row=row, ahead="a", table=events)


def definition(captures: str, events: str, triggers: str, schema: str) -> str:
    """CREATE OR REPLACE FUNCTION for eventing's tables (each `schema.table`, quoted)."""
    expander = expander_name_sql("c.table", "c.kind")
    return f"""
CREATE OR REPLACE FUNCTION {ident(schema)}.{NAME}(
  max_captures integer, sent_at timestamptz, sent_until timestamptz,
  OUT expanded integer, OUT batch_ids uuid[], OUT failures text[],
  OUT sent_ids uuid[], OUT sent_due timestamptz[], OUT sent_triggers bigint[], OUT more boolean
) LANGUAGE plpgsql {PINNED_SEARCH_PATH} AS $eventing$
DECLARE
  g record;
  found_ uuid[];
  done_ bigint[] := '{{}}';
  locked_ bigint := 0;
  chosen_ bigint := 0;
BEGIN
  batch_ids := '{{}}';
  failures := '{{}}';
  FOR g IN
    SELECT p.schema, p.expander, array_agg(p.id ORDER BY p.id) AS ids, max(p.locked) AS locked
    FROM (
      -- Of the captures locked, the first ones within the pass's byte budget (at least one);
      -- octet_length reads an uncompressed value's size from its TOAST pointer.
      SELECT l.id, l.schema, l.expander, l.bytes, pg_catalog.count(*) OVER () AS locked,
        pg_catalog.sum(l.bytes) OVER (ORDER BY l.id) AS upto
      FROM (
        SELECT c.id, c.schema, e.proname AS expander,
          COALESCE(octet_length(c.old_rows), 0) + COALESCE(octet_length(c.new_rows), 0) AS bytes
        FROM {captures} AS c
        -- The expander of the capture's table and kind, owned by whoever owns event_captures.
        JOIN pg_namespace AS s ON s.nspname = c.schema
        JOIN pg_proc AS e ON e.pronamespace = s.oid AND e.proname = {expander}
          AND e.proowner = (SELECT relowner FROM pg_class WHERE oid = '{captures}'::regclass)
          AND e.pronargs = 1
          AND e.proargtypes[0] = (SELECT reltype FROM pg_class WHERE oid = '{captures}'::regclass)
        ORDER BY c.id LIMIT max_captures FOR UPDATE OF c SKIP LOCKED
      ) AS l
    ) AS p WHERE p.upto <= {BYTES_PER_PASS} OR p.upto = p.bytes
    GROUP BY p.schema, p.expander ORDER BY min(p.id)
  LOOP
    locked_ := g.locked;
    chosen_ := chosen_ + cardinality(g.ids);
    BEGIN
      EXECUTE format(
        'SELECT array_agg(b) FROM (SELECT %I.%I(c) AS b FROM {captures} AS c '
        'WHERE c.id = ANY($1) ORDER BY c.id) AS x WHERE b IS NOT NULL',
        g.schema, g.expander
      ) INTO found_ USING g.ids;
      batch_ids := batch_ids || coalesce(found_, '{{}}');
      done_ := done_ || g.ids;
    EXCEPTION WHEN OTHERS THEN
      failures := failures || format('%s.%s %s: %s', g.schema, g.expander, g.ids, SQLERRM);
    END;
  END LOOP;
  DELETE FROM {captures} WHERE id = ANY(done_);
  expanded := cardinality(done_);
  -- Stopped at a limit, having expanded some: another pass may find more.
  more := expanded > 0 AND (locked_ >= max_captures OR chosen_ < locked_);
  IF sent_at IS NOT NULL AND cardinality(batch_ids) > 0 THEN
    -- Rows this transaction wrote: no one else can lock them. Unordered and ordered rows are
    -- marked by two statements, so unordered rows never reach the NOT EXISTS (PostgreSQL does
    -- not promise to short-circuit an OR), which can be an anti-join on the ordering index.
    WITH unordered AS (
      UPDATE {events} AS e SET enqueued_at = sent_at
      FROM {triggers} AS t
      WHERE e.batch_id = ANY(batch_ids) AND e.status = 'staged' AND e.enqueued_at IS NULL
        AND e.deliver_at <= sent_until AND t.id = e.trigger_id AND t.enabled AND NOT t.paused
        AND e.ordering_key IS NULL
      RETURNING e.id, e.deliver_at, e.trigger_id
    ), ordered AS (
      UPDATE {events} AS e SET enqueued_at = sent_at
      FROM {triggers} AS t
      WHERE e.batch_id = ANY(batch_ids) AND e.status = 'staged' AND e.enqueued_at IS NULL
        AND e.deliver_at <= sent_until AND t.id = e.trigger_id AND t.enabled AND NOT t.paused
        AND e.ordering_key IS NOT NULL
        -- Behind an unfinished row of its key: no message; the head sends it when it
        -- finishes, or the sweeper once unblocked.
        AND {not_blocked_sql("e", events)}
      RETURNING e.id, e.deliver_at, e.trigger_id
    ), marked AS (
      SELECT * FROM unordered UNION ALL SELECT * FROM ordered
    )
    SELECT array_agg(m.id ORDER BY m.deliver_at), array_agg(m.deliver_at ORDER BY m.deliver_at),
      array_agg(m.trigger_id ORDER BY m.deliver_at)
    INTO sent_ids, sent_due, sent_triggers FROM marked AS m;
  END IF;
END
$eventing$
"""


def installed_version(cursor, schema: str) -> int | None:
    """The VERSION of the installed function (None: absent, or older than versioning)."""
    cursor.execute(
        "SELECT obj_description(p.oid, 'pg_proc') FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %s AND p.proname = %s",
        [schema, NAME],
    )
    row = cursor.fetchone()
    try:
        return json.loads(row[0] or "{}").get("version") if row else None
    except (ValueError, AttributeError):
        return None


def install(connection, *, force: bool = False) -> bool:
    """Install event_captures_expand() unless this VERSION is there; whether it was installed.

    Also takes every privilege on eventing's capture table and the function from PUBLIC.
    """
    schema = table_schema(connection, EventCapture._meta.db_table)
    if schema is None:
        return False
    with connection.cursor() as cursor:
        if not force and installed_version(cursor, schema) == VERSION:
            return False
        captures = qualified(connection, EventCapture._meta.db_table)
        events = qualified(connection, EventLog._meta.db_table)
        triggers = qualified(connection, Trigger._meta.db_table)
        # An older version returns other columns, which CREATE OR REPLACE cannot change.
        cursor.execute(f"DROP FUNCTION IF EXISTS {ident(schema)}.{NAME}({ARGUMENTS})")
        # Without parameters, so the % of format() reach PostgreSQL as written.
        cursor.execute(definition(captures, events, triggers, schema))
        function = f"{ident(schema)}.{NAME}({ARGUMENTS})"
        comment = json.dumps({"eventing_capture": 1, "version": VERSION})
        cursor.execute(f"COMMENT ON FUNCTION {function} IS {literal(comment)}")
        cursor.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        cursor.execute(f"REVOKE ALL ON TABLE {captures} FROM PUBLIC")
    return True


def call_sql(connection) -> str:
    """How the listener calls it: by schema, whatever its own search_path holds."""
    schema = table_schema(connection, EventCapture._meta.db_table)
    return (
        "SELECT expanded, batch_ids, failures, sent_ids, sent_due, sent_triggers, more "
        f"FROM {ident(schema or 'public')}.{NAME}(%s, %s, %s)"
    )
