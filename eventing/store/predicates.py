"""When a row may be sent: due, claimable, held by its ordering key, its lease lost.

Each rule is written once here, as SQL over a row alias; the forms the stages need are
generated from it: parameterised SQL for the hot-path statements, an ORM filter for querysets,
literal SQL for PL/pgSQL (database capture's expander), and a Python sort key for rows in hand.

Ordering per key follows due time: a row holds a later row of its trigger and key while it is
unfinished and goes first in the key's queue. The queue is: a row being delivered, then rows
already attempted (a retrying head keeps its place, by creation), then rows never attempted by
due time. So an event not yet due never holds one that is due, and the order is total (no two
rows hold each other).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import connections
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

from eventing.conf import settings
from eventing.models import UNFINISHED_STATUSES, EventLog, EventStatus

TABLE = EventLog._meta.db_table


@dataclass
class Sql:
    """Renders values into SQL: as placeholders with parameters, or inline as literals."""

    qn: Callable[[str], str]
    literal: bool = False
    params: list[Any] = field(default_factory=list)

    def value(self, value: Any) -> str:
        """A placeholder (its parameter kept), or the value as a quoted SQL literal."""
        if self.literal:
            if isinstance(value, int):
                return str(value)
            return "'" + str(value).replace("'", "''") + "'"
        self.params.append(value)
        return "%s"

    def values(self, values) -> str:
        """A parenthesised list of values for IN."""
        return "(" + ", ".join(self.value(v) for v in values) + ")"

    def col(self, alias: str, name: str) -> str:
        """A column of a row alias."""
        return f"{alias}.{self.qn(name)}"


def holds(sql: Sql, ahead: str, row: str) -> str:
    """SQL true when row `ahead` holds row `row`: same trigger and key, unfinished, and first in
    the key's queue (being delivered; else attempted before, by creation; else never attempted
    and due first)."""
    c = sql.col

    def before(*names: str) -> str:
        # (ahead.a, ahead.b, …) < (row.a, row.b, …), spelled out for every database.
        first, *rest = names
        less = f"{c(ahead, first)} < {c(row, first)}"
        if not rest:
            return less
        return f"({less} OR ({c(ahead, first)} = {c(row, first)} AND {before(*rest)}))"

    attempted = f"{c(ahead, 'attempts')} > 0"
    return (
        f"{c(ahead, 'trigger_id')} = {c(row, 'trigger_id')} "
        f"AND {c(ahead, 'ordering_key')} = {c(row, 'ordering_key')} "
        f"AND {c(ahead, 'id')} <> {c(row, 'id')} "
        f"AND {c(ahead, 'status')} IN {sql.values(UNFINISHED_STATUSES)} "
        f"AND ({c(ahead, 'status')} = {sql.value(EventStatus.PROCESSING)} "
        f"OR ({attempted} AND ({c(row, 'attempts')} = 0 OR {before('created_at', 'id')})) "
        f"OR (NOT {attempted} AND {c(row, 'attempts')} = 0 "
        f"AND {before('deliver_at', 'created_at', 'id')}))"
    )


def blocked(sql: Sql, row: str, ahead: str = "ahead", table: str | None = None) -> str:
    """SQL true when an unfinished row of its key holds `row` (walks event_logs_ordering_queue;
    a row without a key never reaches the subquery). `table`: event_logs as the caller names
    it (schema-qualified in PL/pgSQL)."""
    table = table or sql.qn(TABLE)
    return f"EXISTS (SELECT 1 FROM {table} AS {ahead} WHERE {holds(sql, ahead, row)})"


def not_blocked_sql(sql: Sql, row: str, ahead: str = "ahead", table: str | None = None) -> str:
    """SQL true when `row` is unordered or first of its key."""
    return f"({sql.col(row, 'ordering_key')} IS NULL OR NOT {blocked(sql, row, ahead, table)})"


def due_sql(sql: Sql, row: str, now: dt.datetime, connection) -> str:
    """SQL true when `row` is due at `now`."""
    deliver_at = EventLog._meta.get_field("deliver_at").get_db_prep_save(now, connection)
    return f"{sql.col(row, 'deliver_at')} <= {sql.value(deliver_at)}"


def claimable_sql(sql: Sql, row: str, now: dt.datetime | None, connection) -> str:
    """SQL true when `row` may be claimed: staged, due at `now` (None: whenever due), and first
    of its key."""
    parts = [f"{sql.col(row, 'status')} = {sql.value(EventStatus.STAGED)}"]
    if now is not None:
        parts.append(due_sql(sql, row, now, connection))
    parts.append(not_blocked_sql(sql, row))
    return " AND ".join(parts)


def not_blocked_plpgsql(row: str = "e", ahead: str = "a", table: str = "public.event_logs") -> str:
    """The not-blocked rule as literal SQL for a PL/pgSQL body, over row alias `row`, reading
    `table` (schema-qualified: the capture functions run with an empty search_path). Database
    capture's expander marks rows sent only when this holds."""
    return not_blocked_sql(Sql(qn=lambda name: name, literal=True), row, ahead, table)


def not_blocked() -> Q:
    """The not-blocked rule as an ORM filter on event_logs (the queryset's own table)."""
    connection = connections[settings.DATABASE]
    sql = Sql(connection.ops.quote_name)
    text = not_blocked_sql(sql, sql.qn(TABLE))
    return Q(RawSQL(text, sql.params, output_field=BooleanField()))


def lost_lease(now: dt.datetime) -> Q:
    """Processing rows whose lease ran out: their worker vanished."""
    return Q(status=EventStatus.PROCESSING, locked_until__lt=now)


def due(now: dt.datetime) -> Q:
    """Rows due at `now`."""
    return Q(deliver_at__lte=now)


def queue_position(row: EventLog) -> tuple:
    """The rule's order as a Python sort key: the first row of a key's queue sorts first."""
    if row.status == EventStatus.PROCESSING:
        return (0, row.created_at, row.created_at, row.id)
    if row.attempts:
        return (1, row.created_at, row.created_at, row.id)
    return (2, row.deliver_at, row.created_at, row.id)
