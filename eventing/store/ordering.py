"""Ordered delivery per key, the rows' side: which row holds a key, parking, marking the next.

A row with an `ordering_key` is claimable only when no row of its trigger and key holds it
(eventing.store.predicates.holds: the key's queue follows due time). The rule lives in the
claim statement and in the sweeper's query, so it holds across worker processes and crashes.
When a head finishes, the next row of its key is marked sent here and published by
eventing.dispatch.ordering; a row found held keeps no message (`enqueued_at` empty), says in
its remark what holds it, and the sweeper sends it once it is first.
"""

from __future__ import annotations

import datetime as dt

from django.db import connections

from eventing.conf import settings
from eventing.models import EventLog, EventStatus
from eventing.store.predicates import TABLE, Sql, holds, not_blocked_sql

# Keys per release statement: a batch finishes up to DELIVERY_BATCH_SIZE heads at once.
RELEASE_CHUNK = 100
# The remark of a row held by its key starts so.
WAITING_BEHIND = "Waiting behind event"


def holder_of(event_id) -> EventLog | None:
    """The row that holds `event_id` (the first of its key's queue), or None."""
    connection = connections[settings.DATABASE]
    sql = Sql(connection.ops.quote_name)
    table = sql.qn(TABLE)
    pk = EventLog._meta.pk.get_db_prep_save(event_id, connection)
    columns = ", ".join(f"ahead.{sql.qn(f.column)}" for f in EventLog._meta.concrete_fields)
    text = (
        f"SELECT {columns} FROM {table} AS r, {table} AS ahead "
        f"WHERE r.{sql.qn('id')} = {sql.value(pk)} "
        f"AND r.{sql.qn('ordering_key')} IS NOT NULL AND {holds(sql, 'ahead', 'r')} "
        f"AND NOT EXISTS (SELECT 1 FROM {table} AS first WHERE {holds(sql, 'first', 'ahead')})"
    )
    found = list(EventLog.objects.using(settings.DATABASE).raw(text, sql.params))
    return found[0] if found else None


def head_of_key(event: EventLog) -> EventLog | None:
    """The row `event` waits behind (the first of its key's queue), or None."""
    if event.ordering_key is None or event.trigger_id is None:
        return None
    return holder_of(event.id)


def waiting_remark(head: EventLog) -> str:
    """What a held row's remark says: which event holds it, and when that one is due."""
    return (
        f"{WAITING_BEHIND} {head.id} of ordering key {head.ordering_key!r} "
        f"({head.status}, due {head.deliver_at:%Y-%m-%d %H:%M:%S} UTC)"
    )[:1000]


def park(event_ids: list, now: dt.datetime) -> set:
    """Rows of `event_ids` that were due but not claimed because their key is held: their
    message is spent, so clear `enqueued_at` (the sweeper sends them once first) and say in the
    remark what holds them."""
    if not event_ids:
        return set()
    rows = EventLog.objects.using(settings.DATABASE)
    parked = rows.filter(
        id__in=event_ids,
        status=EventStatus.STAGED,
        ordering_key__isnull=False,
        deliver_at__lte=now,
    )
    ids = set(parked.values_list("id", flat=True))
    for pk in ids:
        head = holder_of(pk)
        remark = waiting_remark(head) if head is not None else ""
        rows.filter(id=pk, status=EventStatus.STAGED).update(enqueued_at=None, remark=remark)
    return ids


def mark_next(keys: list[tuple[int, str]], now: dt.datetime) -> list[tuple]:
    """Mark sent the first row of each (trigger id, key), when it is staged and due within the
    horizon, in one statement; (id, deliver_at, trigger_id) of each, to publish."""
    if not keys:
        return []
    db = settings.DATABASE
    connection = connections[db]
    sql = Sql(connection.ops.quote_name)
    qn, table = sql.qn, sql.qn(TABLE)
    horizon = now + dt.timedelta(seconds=settings.ETA_HORIZON_S)
    deliver_at = EventLog._meta.get_field("deliver_at")
    enqueued_at = EventLog._meta.get_field("enqueued_at")
    stamp = sql.value(enqueued_at.get_db_prep_save(now, connection))
    of_keys = " OR ".join(
        f"({qn('trigger_id')} = {sql.value(trigger)} AND {qn('ordering_key')} = {sql.value(key)})"
        for trigger, key in keys
    )
    text = (
        f"UPDATE {table} SET {qn('enqueued_at')} = {stamp} "
        f"WHERE ({of_keys}) AND {qn('status')} = {sql.value(EventStatus.STAGED)} "
        f"AND {qn('deliver_at')} <= {sql.value(deliver_at.get_db_prep_save(horizon, connection))} "
        f"AND {not_blocked_sql(sql, table)} "
        f"RETURNING {qn('id')}, {qn('deliver_at')}, {qn('trigger_id')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(text, sql.params)
        found = cursor.fetchall()
    to_python = EventLog._meta.pk.to_python
    column = deliver_at.get_col(EventLog._meta.db_table)
    converters = connection.ops.get_db_converters(column) + deliver_at.get_db_converters(connection)
    out = []
    for pk, due, trigger_id in found:
        for convert in converters:
            due = convert(due, column, connection)
        out.append((to_python(pk), due, trigger_id))
    return out
