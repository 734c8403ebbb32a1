"""The hot path's SQL: claim rows, record their invocations and finish them.

Every delivery runs these, so they skip the ORM's query compiler and RawQuerySet (together
most of a delivery's database CPU) while still adapting values through the model fields, so
they work the same on PostgreSQL and SQLite (3.35+, for RETURNING).
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from django.db import connections

from eventing.conf import settings
from eventing.models import EventLog, EventStatus, InvocationLog
from eventing.store.predicates import Sql, claimable_sql

_EVENT_FIELDS = EventLog._meta.concrete_fields
_EVENT_COLUMNS = [f.column for f in _EVENT_FIELDS]
_EVENT_ATTNAMES = [f.attname for f in _EVENT_FIELDS]


def _prep(model, name: str, value: Any, connection) -> Any:
    return model._meta.get_field(name).get_db_prep_save(value, connection)


def claim_many(
    event_ids: list,
    *,
    lease_until: dt.datetime,
    now: dt.datetime,
    force: bool = False,
    trigger_id: int | None = None,
) -> list[EventLog]:
    """Claim every row of `event_ids` that is staged, due and first of its ordering key (if it
    has one), in one statement; those rows."""
    db = settings.DATABASE
    connection = connections[db]
    qn = connection.ops.quote_name
    table = qn(EventLog._meta.db_table)
    # Staged, due (unless forced) and first of its ordering key: the store's one rule.
    where = Sql(qn)
    conditions = [claimable_sql(where, table, None if force else now, connection)]
    if trigger_id is not None:
        # The lease was sized from this trigger; a row of another trigger is not ours.
        conditions.append(f"{qn('trigger_id')} = {where.value(trigger_id)}")
    condition_params = where.params
    sql = (
        f"UPDATE {qn(EventLog._meta.db_table)} SET {qn('status')} = %s, "
        f"{qn('attempts')} = {qn('attempts')} + 1, {qn('locked_until')} = %s "
        f"WHERE {_id_in(event_ids, qn)} AND {_by_id_only(conditions)}"
    )
    params = [
        EventStatus.PROCESSING,
        _prep(EventLog, "locked_until", lease_until, connection),
        *(_prep(EventLog, "id", pk, connection) for pk in event_ids),
        *condition_params,
    ]
    sql += " RETURNING " + ", ".join(qn(c) for c in _EVENT_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    converters = row_converters(db)
    return [
        EventLog.from_db(db, _EVENT_ATTNAMES, convert(row, converters, connection)) for row in found
    ]


@functools.lru_cache(maxsize=8)
def row_converters(db: str) -> list[tuple[int, list, Any]]:
    """(position, converters, column) of each event column whose value needs converting."""
    connection = connections[db]
    out = []
    for position, field in enumerate(_EVENT_FIELDS):
        column = field.get_col(EventLog._meta.db_table)
        found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if found:
            out.append((position, found, column))
    return out


def convert(row: tuple, converters: list[tuple[int, list, Any]], connection) -> list:
    """A fetched row with its values converted as the ORM would (JSON, booleans, UUIDs…)."""
    values = list(row)
    for position, functions, column in converters:
        value = values[position]
        for function in functions:
            value = function(value, column, connection)
        values[position] = value
    return values


def finish(
    event_id,
    *,
    attempt: int,
    changes: dict[str, Any],
    invocations: list[dict[str, Any]] | None = None,
) -> bool:
    """Apply `changes` if the row is still ours (processing, this attempt); True if it was.

    `invocations` are inserted as by finish_many (on PostgreSQL, in the same statement)."""
    return bool(finish_many([event_id], attempt=attempt, changes=changes, invocations=invocations))


def finish_many(
    event_ids: list,
    *,
    attempt: int,
    changes: dict[str, Any],
    invocations: list[dict[str, Any]] | None = None,
) -> set:
    """Apply the same `changes` to every row still ours at `attempt`; the ids it applied to.

    `invocations` are inserted first; on PostgreSQL in the same statement (a data-modifying
    WITH), so the attempt and the row's move on are one round trip and commit together.
    """
    db = settings.DATABASE
    connection = connections[db]
    qn = connection.ops.quote_name
    assignments = ", ".join(f"{qn(EventLog._meta.get_field(name).column)} = %s" for name in changes)
    params = [_prep(EventLog, name, value, connection) for name, value in changes.items()]
    still_ours = _by_id_only([f"{qn('status')} = %s", f"{qn('attempts')} = %s"])
    sql = (
        f"UPDATE {qn(EventLog._meta.db_table)} SET {assignments} "
        f"WHERE {_id_in(event_ids, qn)} AND {still_ours} RETURNING {qn('id')}"
    )
    params += [_prep(EventLog, "id", pk, connection) for pk in event_ids]
    params += [EventStatus.PROCESSING, attempt]
    if invocations and connection.vendor == "postgresql":
        insert_sql, insert_params = invocations_insert(invocations, connection)
        sql, params = f"WITH invocations AS ({insert_sql}) {sql}", insert_params + params
    elif invocations:
        insert_invocations(invocations)
    to_python = EventLog._meta.pk.to_python
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {to_python(row[0]) for row in cursor.fetchall()}


def _by_id_only(conditions: list[str]) -> str:
    """The conditions besides the ids, in a form no index can serve.

    Without statistics (a new table, or right after a bulk load, until autovacuum analyzes
    it) PostgreSQL guessed `status = 'staged'` matched one row and walked that index past
    every staged row instead of looking the ids up: `(…) IS TRUE` leaves it only the primary
    key. Same meaning, as none of these columns is null on a row that can match.
    """
    return f"({' AND '.join(conditions)}) IS TRUE"


def _id_in(event_ids: list, qn) -> str:
    return f"{qn('id')} IN ({', '.join(['%s'] * len(event_ids))})"


def insert_invocations(rows: list[dict[str, Any]]) -> None:
    """Insert invocation_logs rows (all with the same keys) in one statement."""
    if not rows:
        return
    connection = connections[settings.DATABASE]
    sql, params = invocations_insert(rows, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def invocations_insert(rows: list[dict[str, Any]], connection) -> tuple[str, list]:
    """The INSERT of invocation_logs rows (all with the same keys), and its parameters."""
    qn = connection.ops.quote_name
    names = list(rows[0])
    columns = [InvocationLog._meta.get_field(name).column for name in names]
    row_sql = "(" + ", ".join(["%s"] * len(columns)) + ")"
    params = [
        _prep(InvocationLog, name, values[name], connection) for values in rows for name in names
    ]
    sql = (
        f"INSERT INTO {qn(InvocationLog._meta.db_table)} ({', '.join(qn(c) for c in columns)}) "
        f"VALUES {', '.join([row_sql] * len(rows))}"
    )
    return sql, params


@functools.lru_cache(maxsize=64)
def insert_events_sql(db: str, count: int) -> str:
    """The INSERT of `count` event rows into database `db` (built once per size)."""
    qn = connections[db].ops.quote_name
    fields = EventLog._meta.concrete_fields
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    return (
        f"INSERT INTO {qn(EventLog._meta.db_table)} "
        f"({', '.join(qn(f.column) for f in fields)}) VALUES " + ", ".join([row_sql] * count)
    )


def insert_events(events: list[EventLog], using: str | None = None) -> None:
    """Insert event rows in one statement: atomic on its own, so no BEGIN/COMMIT round trips
    in autocommit mode (bulk_create always opens a transaction)."""
    db = using or settings.DATABASE
    connection = connections[db]
    fields = EventLog._meta.concrete_fields
    params: list[Any] = []
    for event in events:
        for field in fields:
            params.append(field.get_db_prep_save(field.pre_save(event, True), connection))
    with connection.cursor() as cursor:
        cursor.execute(insert_events_sql(db, len(events)), params)
    for event in events:
        event._state.adding = False
        event._state.db = db
